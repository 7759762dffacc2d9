package guard

import "time"

// t0 is the arbitrary instant tests start their clocks at.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
