package oidcverify

// ReplayLen exposes, to this package's tests only, how many entries the replay cache holds.
func (v *Verifier) ReplayLen() int { return v.replay.len() }
