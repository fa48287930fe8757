package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// SimControl drives a simulator process through its /_sim/ control surface.
type SimControl struct {
	URL    string
	Client *http.Client
}

// NewSimControl returns a SimControl for the simulator at url.
func NewSimControl(url string) *SimControl {
	return &SimControl{URL: url, Client: &http.Client{Timeout: 30 * time.Second}}
}

func (s *SimControl) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Post sends a POST to a /_sim/ path and decodes the answer into out.
func (s *SimControl) Post(ctx context.Context, path string, body, out any) error {
	return s.do(ctx, http.MethodPost, path, body, out)
}

// Users returns every user of the tenant with the invitations sent to each.
func (s *SimControl) Users(ctx context.Context) ([]simulator.UserRecord, error) {
	var out []simulator.UserRecord
	return out, s.do(ctx, http.MethodGet, "/_sim/users", nil, &out)
}

// AddUser adds a user by hand.
func (s *SimControl) AddUser(ctx context.Context, u simulator.UserSeed) (cipherscale.User, error) {
	var out cipherscale.User
	return out, s.do(ctx, http.MethodPost, "/_sim/users", u, &out)
}

// Accept accepts a user's invitation.
func (s *SimControl) Accept(ctx context.Context, id string) error {
	return s.do(ctx, http.MethodPost, "/_sim/users/"+id+"/accept", nil, nil)
}

// Stats returns the per-route statistics.
func (s *SimControl) Stats(ctx context.Context) (simulator.Stats, error) {
	var out simulator.Stats
	return out, s.do(ctx, http.MethodGet, "/_sim/stats", nil, &out)
}

// ResetStats clears the statistics.
func (s *SimControl) ResetStats(ctx context.Context) error {
	return s.do(ctx, http.MethodDelete, "/_sim/stats", nil, nil)
}

// SetFaults replaces the fault rules.
func (s *SimControl) SetFaults(ctx context.Context, rules []simulator.FaultRule) error {
	return s.do(ctx, http.MethodPut, "/_sim/faults", simulator.FaultsBody{Rules: rules}, nil)
}

// SetLimit sets the simulator's request rate limit.
func (s *SimControl) SetLimit(ctx context.Context, rps float64, burst int) error {
	return s.do(ctx, http.MethodPut, "/_sim/limits", simulator.LimitsBody{RequestsPerSecond: rps, Burst: burst}, nil)
}
