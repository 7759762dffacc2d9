package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"time"

	"edgeway.dev/edgeway/internal/deploy"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

// Deploy endpoints, on the admin listener only, with --deploy-key (which
// config requires --admin-listen and --state-dir for).
const (
	pathDeploy   = "/deploy"
	pathRollback = "/deploy/rollback"
)

var (
	errDeployKey      = newError(fasthttp.StatusUnauthorized, "DEPLOY_UNAUTHORIZED", "this endpoint needs the deploy key")
	errDeployBusy     = newError(fasthttp.StatusConflict, "DEPLOY_BUSY", "a deploy or rollback is already running")
	errNoPrevious     = newError(fasthttp.StatusConflict, "NO_PREVIOUS_VERSION", "no previous version to roll back to")
	errDeployTooLarge = newError(fasthttp.StatusRequestEntityTooLarge, "DEPLOY_TOO_LARGE", "the package is larger than --artifact-max-bytes")
	errDeployFailed   = newError(fasthttp.StatusInternalServerError, "DEPLOY_FAILED", "deploy failed (logged)")
)

// The admin listener streams request bodies (StreamRequestBody): fasthttp
// reads at most 8 KiB before calling the handler, so an upload is read
// only after the deploy key was checked, never held in memory whole, and
// bounded by --artifact-max-bytes as it is unpacked.

// registerDeploy adds the deploy endpoints to the admin router when
// deploys are on and the supervisor can reload.
func (g *Gateway) registerDeploy(r *router.Router) {
	if g.opts.DeployKey == "" || g.opts.AdminListen == "" {
		return
	}
	rl, ok := g.sup.(deploy.Reloader)
	if !ok {
		g.log.Error().Msg("deploy endpoint off: the function table cannot reload")
		return
	}
	store, err := deploy.New(g.opts, rl)
	if err != nil {
		g.log.Error().Err(err).Msg("deploy endpoint off")
		return
	}
	key := sha256.Sum256([]byte(g.opts.DeployKey))
	authorized := func(ctx *fasthttp.RequestCtx) bool {
		auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
		if len(auth) <= len(bearerPrefix) || !equalFold(auth[:len(bearerPrefix)], "bearer ") {
			return false
		}
		// Hashes compare in constant time whatever the lengths.
		got := sha256.Sum256(auth[len(bearerPrefix):])
		return subtle.ConstantTimeCompare(got[:], key[:]) == 1
	}
	r.POST(pathDeploy, func(ctx *fasthttp.RequestCtx) {
		if !authorized(ctx) {
			errDeployKey.write(ctx)
			return
		}
		// A declared length is checked here, the bytes read by the unpack.
		if n := ctx.Request.Header.ContentLength(); n > 0 && int64(n) > g.opts.ArtifactMaxBytes {
			errDeployTooLarge.write(ctx)
			return
		}
		// Not PostBody first: on a streamed request it reads the whole
		// body into memory.
		body := ctx.RequestBodyStream()
		if body == nil {
			body = bytes.NewReader(ctx.PostBody())
		}
		// The upload has --deploy-read-timeout from now (0: none), not
		// the listener's header timeout.
		if c := ctx.Conn(); c != nil {
			var deadline time.Time
			if g.opts.DeployReadTimeout > 0 {
				deadline = time.Now().Add(g.opts.DeployReadTimeout)
			}
			c.SetReadDeadline(deadline)
		}
		// Whatever of the body the unpack left unread is not drained (nor
		// waited for): the connection closes after the answer.
		ctx.SetConnectionClose()
		v, err := store.Deploy(body)
		g.answerDeploy(ctx, "deploy", v, err)
	})
	r.POST(pathRollback, func(ctx *fasthttp.RequestCtx) {
		if !authorized(ctx) {
			errDeployKey.write(ctx)
			return
		}
		v, err := store.Rollback()
		g.answerDeploy(ctx, "rollback", v, err)
	})
	r.GET(pathDeploy, func(ctx *fasthttp.RequestCtx) {
		if !authorized(ctx) {
			errDeployKey.write(ctx)
			return
		}
		st, err := store.State()
		if err != nil {
			g.log.Error().Err(err).Msg("deploy state unreadable")
			errDeployFailed.write(ctx)
			return
		}
		body, _ := json.Marshal(st)
		writeJSON(ctx, fasthttp.StatusOK, body)
	})
	g.log.Info().Str("state_dir", g.opts.StateDir).Bool("verify_key", g.opts.VerifyKey != "").Msg("deploy endpoint on")
}

func (g *Gateway) answerDeploy(ctx *fasthttp.RequestCtx, what string, v *deploy.Version, err error) {
	switch {
	case err == nil:
		g.log.Info().Str("version", v.ID).Strs("functions", v.Functions).Msg(what + " done")
		body, _ := json.Marshal(map[string]any{"active": v})
		writeJSON(ctx, fasthttp.StatusOK, body)
	case errors.Is(err, deploy.ErrBusy):
		errDeployBusy.write(ctx)
	case errors.Is(err, deploy.ErrNoPrevious):
		errNoPrevious.write(ctx)
	case errors.Is(err, deploy.ErrRefused):
		g.log.Warn().Err(err).Msg(what + " refused; the running version is kept")
		newError(fasthttp.StatusUnprocessableEntity, "DEPLOY_REFUSED", err.Error()).write(ctx)
	default:
		g.log.Error().Err(err).Msg(what + " failed")
		errDeployFailed.write(ctx)
	}
}
