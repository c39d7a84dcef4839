package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// operatorActions has the operator cut the primary region off and bring it
// back, in whatever way the deployment allows (stop its machines, block
// its network), and waits for Enter after each.
type operatorActions struct {
	in      *bufio.Reader
	out     io.Writer
	primary string
	// lines delivers what the reader goroutine read; one goroutine reads
	// for both prompts, so an abandoned prompt does not leave two readers.
	lines chan error
	ended error // why standard input can give no more lines
}

func (o *operatorActions) Cut(ctx context.Context) (time.Time, error) {
	fmt.Fprintf(o.out, "\n>>> Cut the primary region %s off now: stop its nodes, or block its traffic to the\n"+
		">>> other region and to this machine. Press Enter once it is cut.\n", o.primary)
	// The operator may press Enter before or after the cut: the drill
	// times the failover from when it sees the region's endpoint fail.
	return time.Time{}, o.waitEnter(ctx)
}

func (o *operatorActions) Restore(ctx context.Context) error {
	fmt.Fprintf(o.out, "\n>>> Bring the region %s back: start its nodes, or unblock its traffic. Press Enter when done.\n", o.primary)
	return o.waitEnter(ctx)
}

func (o *operatorActions) waitEnter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.ended != nil {
		return o.ended
	}
	if o.lines == nil {
		o.lines = make(chan error)
		go func() {
			for {
				_, err := o.in.ReadString('\n')
				o.lines <- err
				if err != nil {
					return
				}
			}
		}()
	}
	select {
	case err := <-o.lines:
		if errors.Is(err, io.EOF) {
			err = errors.New("standard input ended before Enter was pressed: run the drill from a terminal, or give --local DIR for a dev-cluster.sh deployment")
		}
		o.ended = err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
