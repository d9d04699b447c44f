package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes caps a response body the client reads: a block list with
// data is at most MaxBlocksDataBytes of data, base64-encoded, plus metadata.
const maxResponseBytes = 4 * MaxBlocksDataBytes

// Client talks to a peer's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the admin API at base ("http://127.0.0.1:9443"
// or "127.0.0.1:9443"), sending token as a bearer token when not empty. A
// nil hc means an http.Client with a 30 s timeout.
func NewClient(base, token string, hc *http.Client) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want http://HOST:PORT", base)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: token, http: hc}, nil
}

// URL is the base URL the client talks to.
func (c *Client) URL() string { return c.base }

// APIError is an error response of the admin API.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("admin API: %s (HTTP %d)", e.Message, e.StatusCode)
}

// Healthz checks that the peer answers.
func (c *Client) Healthz(ctx context.Context) error {
	var v map[string]string
	return c.do(ctx, http.MethodGet, "/healthz", nil, &v)
}

// Status returns the peer's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Publish publishes data as the next block of channel ch.
func (c *Client) Publish(ctx context.Context, ch string, data []byte) (*Published, error) {
	var p Published
	if err := c.do(ctx, http.MethodPost, "/v1/channels/"+url.PathEscape(ch)+"/blocks", data, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Blocks lists up to limit delivered blocks of ch from number from on; with
// withData false it lists only their numbers, hashes, sizes and delivery
// times, from a log that reaches further back than the node's block window.
func (c *Client) Blocks(ctx context.Context, ch string, from uint64, limit int, withData bool) (*BlockList, error) {
	q := url.Values{}
	q.Set("from", strconv.FormatUint(from, 10))
	q.Set("limit", strconv.Itoa(limit))
	q.Set("data", strconv.FormatBool(withData))
	var l BlockList
	if err := c.do(ctx, http.MethodGet, "/v1/channels/"+url.PathEscape(ch)+"/blocks?"+q.Encode(), nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Metrics returns the peer's /metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("admin API %s: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp.StatusCode, body)
	}
	return body, nil
}

func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API %s: %w", c.base, unwrapURLError(err))
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("admin API %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API %s: decoding %s response: %w", c.base, path, err)
	}
	return nil
}

func apiError(code int, body []byte) error {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
		if len(e.Error) > 200 {
			e.Error = e.Error[:200] + "..."
		}
		if e.Error == "" {
			e.Error = http.StatusText(code)
		}
	}
	return &APIError{StatusCode: code, Message: e.Error}
}

// unwrapURLError drops url.Error's repetition of method and URL, which the
// caller's message already has.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
