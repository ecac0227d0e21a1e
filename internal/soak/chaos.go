package soak

import (
	"context"
	"math/rand/v2"
	"time"
)

// The chaos actions.
const (
	actKill = iota
	actPause
	actBroker
	numActs
)

// chaos disturbs the cluster until ctx ends: every ChaosEvery on average
// it SIGKILLs an instance and restarts it (sometimes at once, sometimes on
// an empty data directory), SIGSTOPs one for longer than the group session
// timeout, or stops and restarts the broker. The first actions are one of
// each kind, in random order, so that even a short run sees them all. The
// first comes after a warm-up of a twentieth of the run (2 to 15 s).
//
// It never disturbs the last instance that is running and not paused, so
// the cluster as a whole keeps making progress; a broker restart stops
// everyone for a moment, which is the point.
func (s *soak) chaos(ctx context.Context, until time.Time) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0xc4a05))
	c := s.cluster
	on, _ := s.cfg.actions() // Validate checked it
	if on[actBroker] && !s.canRestartBroker() {
		on[actBroker] = false
	}
	if on == [numActs]bool{} {
		return
	}
	var pending []int
	for _, a := range rng.Perm(numActs) {
		if on[a] {
			pending = append(pending, a)
		}
	}
	// Let the workload warm up first: a real cluster takes seconds to
	// settle its groups and transactional producers.
	sleepCtx(ctx, min(max(s.cfg.Duration/20, 2*time.Second), 15*time.Second))
	pausesDone := make(chan struct{}, 64)
	pausing := 0
	defer func() {
		for ; pausing > 0; pausing-- {
			<-pausesDone
		}
	}()
	for {
		wait := time.Duration(float64(s.cfg.ChaosEvery) * (0.5 + rng.Float64()))
		sleepCtx(ctx, wait)
		for drained := false; !drained; {
			select {
			case <-pausesDone:
				pausing--
			default:
				drained = true
			}
		}
		if ctx.Err() != nil || time.Now().After(until) {
			return
		}
		act := -1
		if len(pending) > 0 {
			act, pending = pending[0], pending[1:]
		} else {
			// Weights: kills 6, pauses 2, broker restarts 2.
			for act < 0 || !on[act] {
				switch r := rng.IntN(10); {
				case r < 6:
					act = actKill
				case r < 8:
					act = actPause
				default:
					act = actBroker
				}
			}
		}
		switch act {
		case actKill:
			in := s.pickVictim(rng)
			if in == nil {
				pending = append([]int{act}, pending...) // try again later
				continue
			}
			var down time.Duration
			if rng.IntN(3) > 0 {
				down = time.Duration(rng.Int64N(int64(3 * time.Second)))
			}
			wipe := rng.IntN(4) == 0
			if err := c.killInstance(ctx, in, down, wipe); err != nil && ctx.Err() == nil {
				s.logf("chaos: %v", err)
			}
		case actPause:
			d := s.cfg.PauseFor + time.Duration(rng.Int64N(int64(3*time.Second)))
			if time.Now().Add(d).After(until) {
				continue // it would outlast the chaos phase
			}
			in := s.pickVictim(rng)
			if in == nil {
				pending = append([]int{act}, pending...)
				continue
			}
			pausing++
			go func() {
				defer func() { pausesDone <- struct{}{} }()
				c.pauseInstance(ctx, in, d)
			}()
		case actBroker:
			down := 500*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second)))
			if err := c.restartBroker(ctx, rng, down); err != nil && ctx.Err() == nil {
				s.logf("chaos: %v", err)
			}
		}
	}
}

// canRestartBroker reports whether the soak can stop and start the broker.
func (s *soak) canRestartBroker() bool {
	return s.cluster.broker != nil || s.cfg.BrokerKillCmd != ""
}

// pickVictim returns a random instance that is running and not paused,
// provided another one is too (or there is only one instance); nil
// otherwise.
func (s *soak) pickVictim(rng *rand.Rand) *instance {
	var healthy []*instance
	for _, in := range s.cluster.inst {
		if in.Running() && !in.Paused() {
			healthy = append(healthy, in)
		}
	}
	if len(healthy) == 0 || len(healthy) < 2 && len(s.cluster.inst) > 1 {
		return nil
	}
	return healthy[rng.IntN(len(healthy))]
}
