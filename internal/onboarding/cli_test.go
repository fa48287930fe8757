package onboarding

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMainExitStatusesAndMessages(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string // in stdout or stderr
	}{
		{nil, nil, ExitError, "Usage:"},
		{[]string{"--help"}, nil, ExitOK, "Usage:"},
		{[]string{"apply"}, nil, ExitError, `unknown command "apply"`},
		{[]string{"export", "extra"}, nil, ExitError, "export takes no arguments"},
		{[]string{"export", "--api-url", "http://127.0.0.1:1"}, nil, ExitError, "no API key"},
		{[]string{"export", "--api-url", "http://127.0.0.1:1", "--api-key-file", "/nonexistent/key"}, nil, ExitError, "--api-key-file"},
		{[]string{"export", "--tenant", "prod"}, nil, ExitError, "--tenant must be KIND/NAME"},
		{[]string{"export", "--api-url", "ftp://x"}, map[string]string{APIKeyEnv: "k-123"}, ExitError, "--api-url"},
		{[]string{"plan", "--cluster=false", "-f", "/nonexistent"}, map[string]string{APIKeyEnv: "k-123"}, ExitError, "/nonexistent"},
		{[]string{"export", "-h"}, nil, ExitOK, "-memberships"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tt.args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return tt.env[k] }})
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String()+errOut.String(), tt.want) {
				t.Errorf("output does not say %q:\n%s%s", tt.want, out.String(), errOut.String())
			}
		})
	}
}
