package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of run and reads of the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunRequiresAKey(t *testing.T) {
	t.Setenv("CIPHERSCALE_API_KEY", "")
	var out, errOut syncBuffer
	err := run(context.Background(), []string{"--listen", "127.0.0.1:0"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunServesAndStops(t *testing.T) {
	const key = "k-from-env-0123456789"
	t.Setenv("CIPHERSCALE_API_KEY", key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--demo-seed"}, &out, &errOut) }()

	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" {
		if line, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "cipherscale-sim listening on "); ok {
			url = line
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line; stdout %q stderr %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Count(out.String(), "\n") != 1 || !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Errorf("stdout %q", out.String())
	}

	req, _ := http.NewRequest("GET", url+"/tenants/users", nil)
	req.Header.Set("apikey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "owner@example.com") {
		t.Errorf("GET: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(errOut.String(), "11111111-1111-4111-8111-111111111111") {
		t.Errorf("seeded ids not printed: %q", errOut.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if strings.Contains(out.String()+errOut.String(), key) {
		t.Error("the API key was printed")
	}
}
