package tenant

// Hooks for the package's external tests only: the controllers never need them.

// Invalidate makes the next lookup read the tenant again.
func (t *Tenant) Invalidate() {
	t.mu.Lock()
	t.valid = false
	t.mu.Unlock()
}

// Record returns what a SaveFunc saves.
func (b *RemovalBudget) Record() BudgetRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(b.now())
	return b.record()
}
