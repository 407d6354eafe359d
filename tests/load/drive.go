package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// target is one kind of request against one server.
type target struct {
	name   string
	url    string
	header http.Header
	// body returns the request body of the i-th request of a worker.
	body func(worker int, i uint64) []byte
	// ok says whether a 200 answer is the expected decision.
	ok func(body []byte) bool
	// Optional, for workloads whose requests differ (the mix): auth gives
	// the i-th request's bearer token (the header then gets it), check
	// replaces ok with the i-th request's expected decision, and window is
	// called as the measured window begins (true) and ends (false).
	auth   func(worker int, i uint64) string
	check  func(worker int, i uint64, body []byte) bool
	window func(begin bool)
}

// result is one measured run.
type result struct {
	server   string
	conc     int
	requests int
	errors   int
	firstErr string
	window   time.Duration
	p50, p99 time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.window.Seconds() }

// sample is one worker's measurements.
type sample struct {
	lat      []time.Duration
	errors   int
	firstErr string
}

// drive runs conc workers, each with its own keep-alive connection, for
// warmup and then duration; only requests that start and finish inside the
// measured window count. Every non-200 (or unexpected decision), in the
// warm-up or the window, is an error.
func drive(ctx context.Context, t target, conc int, warmup, duration time.Duration) result {
	tr := &http.Transport{
		MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc,
		IdleConnTimeout: 30 * time.Second, DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	start := time.Now().Add(warmup)
	end := start.Add(duration)
	samples := make([]sample, conc)
	var wg sync.WaitGroup
	var stopped atomic.Bool
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := &samples[w]
			s.lat = make([]time.Duration, 0, 1<<14)
			for i := uint64(0); !stopped.Load(); i++ {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					return
				}
				err := once(client, t, w, i)
				t1 := time.Now()
				if err != nil { // counted in the warm-up too: any failure fails the run
					s.errors++
					if s.firstErr == "" {
						s.firstErr = err.Error()
					}
					continue
				}
				if t0.Before(start) || t1.After(end) {
					continue // warm-up, or past the window
				}
				s.lat = append(s.lat, t1.Sub(t0))
			}
		}(w)
	}
	if t.window != nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start)):
			t.window(true)
		}
	}
	select {
	case <-ctx.Done():
		stopped.Store(true)
	case <-time.After(time.Until(end)):
	}
	if t.window != nil && ctx.Err() == nil {
		t.window(false)
	}
	wg.Wait()

	r := result{server: t.name, conc: conc, window: duration}
	var all []time.Duration
	for _, s := range samples {
		all = append(all, s.lat...)
		r.errors += s.errors
		if r.firstErr == "" {
			r.firstErr = s.firstErr
		}
	}
	r.requests = len(all)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.p50, r.p99 = quantile(all, 0.50), quantile(all, 0.99)
	return r
}

// once sends one request and checks the answer.
func once(client *http.Client, t target, w int, i uint64) error {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(t.body(w, i)))
	if err != nil {
		return err
	}
	req.Header = t.header
	if t.auth != nil {
		req.Header = http.Header{"Content-Type": t.header["Content-Type"], "Authorization": {"Bearer " + t.auth(w, i)}}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	if (t.check != nil && !t.check(w, i, body)) || (t.check == nil && !t.ok(body)) {
		return fmt.Errorf("unexpected decision: %.200s", body)
	}
	return nil
}

// quantile is the q-quantile of sorted latencies (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// probe sends one request and returns the body, requiring 200.
func probe(t target) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(t.body(0, 0)))
	if err != nil {
		return nil, err
	}
	req.Header = t.header
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s: status %d: %s", t.name, resp.StatusCode, body)
	}
	return body, nil
}
