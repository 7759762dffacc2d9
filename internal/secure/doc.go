// Package secure holds edgeway's security primitives: JWT verification for
// verify_jwt functions, bearer-token extraction, development-secret checks,
// .env parsing, secret masking for logs, and the Deno permission flags each
// worker is started with.
//
// Verifying tokens:
//
//	v, err := secure.NewVerifier(secure.VerifierOptions{
//		Secret:    []byte(os.Getenv("JWT_SECRET")),  // HS256/384/512
//		JWKSURL:   "https://<ref>.supabase.co/auth/v1/.well-known/jwks.json",
//		ClockSkew: 30 * time.Second,
//		Log:       log,
//	})
//	if err != nil { ... }
//	defer v.Close()
//	tok := secure.TokenFrom(ctx, secure.TokenFromHeader, "")
//	res, err := v.Verify(tok, time.Now())
//	if err != nil { // err.Error() is safe to show the client, e.g. "token expired"
//		...
//	}
//	ctx.Request.Header.SetBytesV("x-auth-claims", res.ClaimsB64)
//
// The algorithm a token may use follows from the configured keys, never from
// the token: a shared secret verifies HS256/384/512, an RSA key RS* and PS*, an
// EC key only the ES algorithm of its curve, an Ed25519 key EdDSA. "none" is
// never accepted (RFC 8725 §3.1).
//
// Starting Deno:
//
//	profiles, err := secure.ParseProfiles([]string{"db=--allow-net=db.internal:5432,--allow-env"})
//	flags, err := profiles.Resolve(fn.Permissions) // nil means "standard"
//	args := secure.DenoPermissionFlags(flags, []string{fnDir, sharedDir}, []string{sock})
package secure
