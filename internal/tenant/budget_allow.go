// Allowances: a person lets removals that wait for a tripped budget go, with the allow-removals
// annotation on the tenant object.

package tenant

// Allow grants the allow-removals annotation whose value is token: it releases at most n of
// the removals that wait now, oldest first (only those of namespace ns when ns is not empty),
// and nothing else: the rest of n lapses, and a removal that starts waiting later is not
// released by it. The same token is granted once: reading the same annotation again grants
// nothing. An empty token (the annotation is gone) forgets the last one, so that setting the
// same value again later is a new grant. A tripped budget with nothing left waiting is no
// longer tripped. It reports whether it granted, and how many removals it released.
func (b *RemovalBudget) Allow(token string, n int, ns string) (granted bool, released int) {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	if token == "" {
		if b.allowToken != "" {
			b.allowToken = ""
			b.version++
		}
		return false, 0
	}
	if token == b.allowToken || n <= 0 {
		return false, 0
	}
	now := b.now()
	b.prune(now)
	b.allowToken = token
	b.version++
	for _, k := range firstN(b.waitingOldestFirst(ns), n) {
		delete(b.waiting, k)
		b.released[k] = now
		released++
	}
	if len(b.waiting) == 0 && b.tripped() {
		b.untrip()
	}
	return true, released
}

// AllowToken returns the allow-removals value last granted ("" when none), for the tenant's
// status to record that the annotation was used.
func (b *RemovalBudget) AllowToken() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allowToken
}

// RestoreAllowToken records token as already granted without granting anything: a fresh process
// calls it with the value the tenant's status says was used, so that a restart does not grant
// the same annotation twice.
func (b *RemovalBudget) RestoreAllowToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowToken = token
}
