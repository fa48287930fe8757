// Package docs checks the documentation as a reader meets it: the README is the front door (short,
// with a table of contents into docs/), every page under docs/ is reachable from it, and no
// relative link or #anchor in the README or under docs/ leads nowhere.
package docs
