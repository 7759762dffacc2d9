package ratestore

import "github.com/VictoriaMetrics/metrics"

// Gateway-wide metrics of the shared rate limit store; all zero without
// one.
var (
	storeErrors      = metrics.NewCounter(`edgeway_rate_limit_store_errors_total`)
	storeOutages     = metrics.NewCounter(`edgeway_rate_limit_store_outages_total`)
	uncheckedAllowed = metrics.NewCounter(`edgeway_rate_limit_store_unchecked_total{result="allowed"}`)
	uncheckedRefused = metrics.NewCounter(`edgeway_rate_limit_store_unchecked_total{result="refused"}`)
	uncheckedLocal   = metrics.NewCounter(`edgeway_rate_limit_store_unchecked_total{result="local"}`)
	storeUp          = metrics.NewGauge(`edgeway_rate_limit_store_up`, nil)
)
