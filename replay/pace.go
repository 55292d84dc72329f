package replay

import (
	"context"
	"time"
)

// Clock is the time a following request is paced by: the wall clock, or a
// simulated one in tests.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (returning its error).
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacingSlack is how early a flow may be sent rather than sleeping for it:
// sleeping once per flow would cost more than the flows at high rates.
const pacingSlack = time.Millisecond

// pacer holds a replay to the recorded pace times speed: the flow recorded
// at t is sent (t-from)/speed after the replay started.
type pacer struct {
	clock Clock
	speed float64 // 0: no pacing
	from  time.Time
	start time.Time
}

func newPacer(c Clock, speed float64, from time.Time) *pacer {
	return &pacer{clock: c, speed: speed, from: from, start: c.Now()}
}

// wait waits until the flow recorded at t is due. idle is called before
// it sleeps: what is ready to send goes out now, not after the sleep.
func (p *pacer) wait(ctx context.Context, t time.Time, idle func() error) error {
	if p.speed <= 0 {
		return nil
	}
	due := p.start.Add(time.Duration(float64(t.Sub(p.from)) / p.speed))
	if d := due.Sub(p.clock.Now()); d > pacingSlack {
		if err := idle(); err != nil {
			return err
		}
		// Now again: idle may have taken part of the wait.
		if d = due.Sub(p.clock.Now()); d <= 0 {
			return nil
		}
		return p.clock.Sleep(ctx, d)
	}
	return nil
}
