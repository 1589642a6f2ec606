package proc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitHTTP polls url with client every 50ms until it answers 200 OK. It gives
// up with exited() as soon as done is closed (the process being waited for
// has exited), and when ctx ends with an error naming what it waited for and
// the last answer.
func WaitHTTP(ctx context.Context, client *http.Client, url, what string, done <-chan struct{}, exited func() error) error {
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-done:
			return exited()
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
