package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// The dashboard signs in with a token once: POST /v1/session answers a session in an HttpOnly, SameSite=Strict
// cookie, and the token is never seen again — never in a URL, never in the page's storage. A change made with the
// cookie (any method but GET and HEAD) must carry the session's CSRF token in X-CSRF-Token, and is refused when
// the browser says it comes from another site (Sec-Fetch-Site).

// sessionCookie is the cookie's name: with the __Host- prefix over TLS (the browser then insists on Secure,
// Path=/ and no Domain).
func sessionCookie(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-myrmex_session"
	}
	return "myrmex_session"
}

// SessionRequest is POST /v1/session's body.
type SessionRequest struct {
	// Token is an API token (myrmex serve token create); it is checked and forgotten.
	Token string `json:"token"`
}

// SessionInfo is what a signed-in page knows of its session.
type SessionInfo struct {
	// Name and Scope are the token's the session was made from.
	Name  string      `json:"name"`
	Scope state.Scope `json:"scope"`
	// Expires is when the session ends (at most 12 hours, never past the token's expiry).
	Expires time.Time `json:"expires"`
	// CSRFToken goes in X-CSRF-Token with every change the page asks for. Empty for a bearer token.
	CSRFToken string `json:"csrf_token,omitempty"`
}

// SessionTTL is how long a dashboard session lasts.
const SessionTTL = 12 * time.Hour

func (s *Server) sessionRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/session", id: "signIn", summary: "Sign a browser in with a token: the session comes back as an HttpOnly cookie, with its CSRF token",
			in: &SessionRequest{}, out: &SessionInfo{}, status: 201, handle: func(s *Server, c *call) (int, any, error) {
				w := c.req.Context().Value(writerKey{}).(http.ResponseWriter)
				addr := clientAddr(c.req)
				if s.limit.blocked(addr) {
					w.Header().Set("Retry-After", "60")
					return 0, nil, errRateLimited
				}
				// A sign-in forged by another site's form (text/plain can carry JSON) would sign the victim's
				// browser in as the attacker: only the page's own fetch, with a JSON body, signs in.
				if err := crossSite(c.req); err != nil {
					return 0, nil, err
				}
				if mt, _, _ := mime.ParseMediaType(c.req.Header.Get("Content-Type")); mt != "application/json" {
					return 0, nil, fmt.Errorf("%w: a sign-in is a JSON body (Content-Type: application/json), not %q", errdefs.ErrInvalidArgument, c.req.Header.Get("Content-Type"))
				}
				var req SessionRequest
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				if req.Token == "" {
					return 0, nil, fmt.Errorf("%w: no token: {\"token\": \"myx_…\"}", errdefs.ErrInvalidArgument)
				}
				v, sess, ok, err := s.cfg.State.CreateSession(c.req.Context(), strings.TrimSpace(req.Token), SessionTTL, s.cfg.Now())
				if err != nil {
					return 0, nil, err
				}
				if !ok {
					s.limit.fail(addr)
					return 0, nil, fmt.Errorf("%w: that token is not valid (unknown, revoked or expired)", errdefs.ErrUnauthorized)
				}
				c.token = &sess.Token // audited as a change made by that token
				http.SetCookie(w, &http.Cookie{Name: sessionCookie(c.req), Value: v, Path: "/", Expires: sess.Expires,
					HttpOnly: true, Secure: c.req.TLS != nil, SameSite: http.SameSiteStrictMode})
				return 201, SessionInfo{Name: sess.Token.Name, Scope: sess.Token.Scope, Expires: sess.Expires, CSRFToken: state.CSRFToken(v)}, nil
			}},
		{method: "GET", path: "/v1/session", scope: state.ScopeRead, id: "session", summary: "The session (or token) this request is made with, and its CSRF token",
			out: &SessionInfo{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				if c.session == nil {
					return 200, SessionInfo{Name: c.token.Name, Scope: c.token.Scope, Expires: c.token.Expires}, nil
				}
				return 200, SessionInfo{Name: c.token.Name, Scope: c.token.Scope, Expires: c.session.Expires, CSRFToken: state.CSRFToken(c.sessionValue)}, nil
			}},
		{method: "DELETE", path: "/v1/session", scope: state.ScopeRead, id: "signOut", summary: "Sign the browser out: its session ends and its cookie is cleared",
			out: &SessionInfo{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				if c.session == nil {
					return 0, nil, fmt.Errorf("%w: this request is made with a token, not a session: nothing to sign out", errdefs.ErrInvalidArgument)
				}
				if err := s.cfg.State.DeleteSession(context.WithoutCancel(c.req.Context()), c.sessionValue); err != nil {
					return 0, nil, err
				}
				w := c.req.Context().Value(writerKey{}).(http.ResponseWriter)
				http.SetCookie(w, &http.Cookie{Name: sessionCookie(c.req), Value: "", Path: "/", MaxAge: -1,
					HttpOnly: true, Secure: c.req.TLS != nil, SameSite: http.SameSiteStrictMode})
				return 200, SessionInfo{Name: c.token.Name, Scope: c.token.Scope}, nil
			}},
	}
}

var errRateLimited = errors.New("too many failed authentications from this address: wait a minute")

// sessionAuth authenticates a request by its session cookie. A change (not GET or HEAD) must also carry the
// session's CSRF token and must not come from another site.
func (s *Server) sessionAuth(r *http.Request) (sess *state.Session, value string, ok bool, csrfErr error, err error) {
	ck, cerr := r.Cookie(sessionCookie(r))
	if cerr != nil || ck.Value == "" {
		return nil, "", false, nil, nil
	}
	sess, ok, err = s.cfg.State.AuthenticateSession(r.Context(), ck.Value, s.cfg.Now())
	if err != nil || !ok {
		return nil, "", false, nil, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := crossSite(r); err != nil {
			return sess, ck.Value, true, err, nil
		}
		want := state.CSRFToken(ck.Value)
		if got := r.Header.Get("X-CSRF-Token"); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return sess, ck.Value, true, errors.New("a change made with a session needs its CSRF token in X-CSRF-Token (GET /v1/session)"), nil
		}
	}
	return sess, ck.Value, true, nil, nil
}

// errCrossSite is a request a page of another site made (Sec-Fetch-Site): 403, code csrf.
var errCrossSite = errors.New("a change asked for by a page of another site")

// crossSite refuses a request that the browser says another site's page made (Sec-Fetch-Site); browsers too old
// to say are left to the CSRF token and the JSON body.
func crossSite(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
		return nil
	default:
		return fmt.Errorf("%w (Sec-Fetch-Site: %s)", errCrossSite, site)
	}
}

// securityHeaders are on every answer: the API's JSON and the dashboard's pages. The Content-Security-Policy
// lets a page run only the dashboard's own scripts and styles, load nothing from elsewhere, post forms nowhere
// else, and be framed by no one.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), payment=()")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// ContentSecurityPolicy is the policy of every answer.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
