package simulator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

const bigTenant = 100_000

type lightPage struct {
	Data []struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"data"`
	Total       int  `json:"total"`
	Page        int  `json:"page"`
	HasNext     bool `json:"hasNext"`
	HasPrevious bool `json:"hasPrevious"`
}

// TestListHundredThousand reads a tenant of 100,000 users page by page over HTTP, every user
// once, in creation order; and a page without sort costs O(limit): the last page is served about
// as fast as the first.
func TestListHundredThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("large tenant")
	}
	s, ts := newTestServer(t)
	start := time.Now()
	if err := s.SeedUsers(bigTenant, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	seeded := time.Since(start)

	start = time.Now()
	seen := make(map[string]bool, bigTenant)
	pages := 0
	for offset := 0; ; offset += cipherscale.MaxPageSize {
		r := do(t, ts.URL, testKey, "GET", fmt.Sprintf("/tenants/users?limit=%d&offset=%d", cipherscale.MaxPageSize, offset), "")
		if r.status != http.StatusOK {
			t.Fatalf("offset %d: %d %s", offset, r.status, r.body)
		}
		// Decode only what is checked: the test's own decoding is not what is measured.
		p := decode[lightPage](t, r.body)
		pages++
		if p.Total != bigTenant || p.Page != offset/cipherscale.MaxPageSize || p.HasPrevious != (offset > 0) {
			t.Fatalf("offset %d: total %d page %d prev %t", offset, p.Total, p.Page, p.HasPrevious)
		}
		for i, u := range p.Data {
			if want := fmt.Sprintf("user%d@example.com", offset+i+1); u.Email != want {
				t.Fatalf("offset %d item %d: %s, want %s", offset, i, u.Email, want)
			}
			if seen[u.ID] {
				t.Fatalf("user %s twice", u.ID)
			}
			seen[u.ID] = true
		}
		if !p.HasNext {
			break
		}
	}
	read := time.Since(start)
	if len(seen) != bigTenant || pages != bigTenant/cipherscale.MaxPageSize {
		t.Fatalf("read %d users in %d pages", len(seen), pages)
	}
	t.Logf("seeded %d users in %v, read them in %d pages in %v", bigTenant, seeded, pages, read)

	// A page costs O(limit), not O(offset): the last page of the tenant is served about as fast
	// as the first. Relative, best of 10 each, alternated: a busy machine slows both alike.
	page := func(offset int) time.Duration {
		req := httptest.NewRequest("GET", fmt.Sprintf("/tenants/users?limit=100&offset=%d", offset), nil)
		req.Header.Set("apikey", testKey)
		rec := httptest.NewRecorder()
		begin := time.Now()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("page at offset %d: %d", offset, rec.Code)
		}
		return time.Since(begin)
	}
	first, deep := time.Hour, time.Hour
	for range 10 {
		first, deep = min(first, page(0)), min(deep, page(bigTenant-100))
	}
	t.Logf("best of 10: the first page %v, the last %v", first, deep)
	if deep > 10*first+time.Millisecond {
		t.Errorf("the last page of %d users took %v, the first %v: a page must not cost O(offset)", bigTenant, deep, first)
	}
}

func benchTenant(b *testing.B) *Server {
	b.Helper()
	s := New(testKey)
	if err := s.SeedUsers(bigTenant, "user%d@example.com"); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkListPage serves one page of 100 users from a tenant of 100,000, in process.
func BenchmarkListPage(b *testing.B) {
	s := benchTenant(b)
	offsets := []int{0, 50_000, 99_900}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", fmt.Sprintf("/tenants/users?limit=100&offset=%d", offsets[i%len(offsets)]), nil)
		req.Header.Set("apikey", testKey)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkListAllPages reads all 1,000 pages of a tenant of 100,000, in process.
func BenchmarkListAllPages(b *testing.B) {
	s := benchTenant(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for offset := 0; offset < bigTenant; offset += 100 {
			req := httptest.NewRequest("GET", fmt.Sprintf("/tenants/users?limit=100&offset=%d", offset), nil)
			req.Header.Set("apikey", testKey)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	}
}
