package credstore

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Credentials are one registry's login. Printing, logging or marshalling them never shows Password or Token:
// each reads "********" when set and "" when not. Only the store writes them out, inside its encrypted file.
type Credentials struct {
	Username string
	// Password is the password or a personal access token used as one (HTTP basic auth, exchanged for a bearer
	// token where the registry asks for one).
	Password string
	// Token is an identity token: a long-lived OAuth2 refresh token that the registry's token service exchanges
	// for short-lived bearer tokens, as `docker login` stores for registries that return one (Azure Container
	// Registry, for one). It is not a bearer token sent as it is: those expire in minutes and are not worth
	// storing.
	Token string
}

// mask is how a secret that is set shows.
func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "********"
}

// String shows the username and masks the secrets; %v and %+v use it.
func (c Credentials) String() string {
	return fmt.Sprintf("{Username:%s Password:%s Token:%s}", c.Username, mask(c.Password), mask(c.Token))
}

// GoString shows the username and masks the secrets; %#v uses it.
func (c Credentials) GoString() string {
	return fmt.Sprintf("credstore.Credentials{Username:%q, Password:%q, Token:%q}", c.Username, mask(c.Password),
		mask(c.Token))
}

// LogValue shows the username and masks the secrets in slog records.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", c.Username),
		slog.String("password", mask(c.Password)),
		slog.String("token", mask(c.Token)),
	)
}

// MarshalJSON writes the username and masks the secrets. What it writes is for display: read back, it holds
// "********" as the password.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}{c.Username, mask(c.Password), mask(c.Token)})
}

// entry is the form credentials take inside the encrypted blob, the only place their secrets are written.
type entry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	// Data is what a record keeps besides its credentials (a saved registry's URL, type and rules), as JSON.
	Data json.RawMessage `json:"data,omitempty"`
}
