package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is relative to this package's directory, where go test runs.
var repoRoot = filepath.Join("..", "..")

// maxReadmeLines is issue 20's bound on the README.
const maxReadmeLines = 250

func read(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// markdownFiles lists README.md and every .md file under docs/, relative to the repository.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(repoRoot, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var fence = regexp.MustCompile("(?s)```.*?```")

// link matches an inline Markdown link's target: [text](target).
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// links returns the targets of the inline links of a Markdown text, outside code blocks.
func links(text string) []string {
	var out []string
	for _, m := range link.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
		out = append(out, m[1])
	}
	return out
}

// slug is the anchor GitHub gives a heading: lower case, punctuation other than '-' and '_'
// dropped, spaces made '-'.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of the headings of a Markdown text, outside code blocks.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			in = !in
		}
		if !in && strings.HasPrefix(line, "#") {
			out[slug(strings.TrimLeft(line, "#"))] = true
		}
	}
	return out
}

func TestReadmeIsShort(t *testing.T) {
	readme := read(t, "README.md")
	if n := strings.Count(readme, "\n"); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, more than %d: move reference text into docs/", n, maxReadmeLines)
	}
}

func TestEveryDocsPageIsLinkedFromTheReadme(t *testing.T) {
	linked := map[string]bool{}
	for _, l := range links(read(t, "README.md")) {
		path, _, _ := strings.Cut(l, "#")
		linked[filepath.ToSlash(filepath.Clean(path))] = true
	}
	// The pages of docs/ itself, and the README of each folder under it (the pages inside a
	// folder are reached from that folder's README).
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	readmes, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pages, readmes...) {
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			t.Fatal(err)
		}
		if !linked[filepath.ToSlash(rel)] {
			t.Errorf("%s is not linked from README.md", filepath.ToSlash(rel))
		}
	}
}

func TestRelativeLinksResolve(t *testing.T) {
	headings := map[string]map[string]bool{}
	for _, f := range markdownFiles(t) {
		for _, l := range links(read(t, f)) {
			if strings.Contains(l, "://") || strings.HasPrefix(l, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(l, "#")
			target := f
			if path != "" {
				target = filepath.ToSlash(filepath.Join(filepath.Dir(f), path))
			}
			if _, err := os.Stat(filepath.Join(repoRoot, target)); err != nil {
				t.Errorf("%s links to %s: %s does not exist", f, l, target)
				continue
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			if headings[target] == nil {
				headings[target] = anchors(read(t, target))
			}
			if !headings[target][anchor] {
				t.Errorf("%s links to %s: %s has no heading #%s", f, l, target, anchor)
			}
		}
	}
}
