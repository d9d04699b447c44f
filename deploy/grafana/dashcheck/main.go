// Command dashcheck runs every PromQL query of a Grafana dashboard against a
// Prometheus server and fails if any returns no data, so that a dashboard
// panel that would stay empty (a renamed metric, a wrong label) is caught
// before an operator sees it. Grafana's variables are substituted first:
// $__rate_interval by -rate-interval, every other template variable by
// -all (the "All" regex). It queries once; .ci/prometheus-check retries it
// until the scrapes have produced rates.
//
//	go run ./deploy/grafana/dashcheck -prometheus http://127.0.0.1:9090 deploy/grafana/fabgossip.json
//	go run ./deploy/grafana/dashcheck -list deploy/grafana/fabgossip.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func main() {
	prom := flag.String("prometheus", "http://127.0.0.1:9090", "Prometheus base URL")
	rateInterval := flag.String("rate-interval", "1m", "what $__rate_interval stands for")
	all := flag.String("all", ".*", "what every other template variable stands for")
	list := flag.Bool("list", false, "print the panels' queries, after substitution, and query nothing")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: dashcheck [flags] DASHBOARD.json")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	queries, err := Load(flag.Arg(0), *rateInterval, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashcheck:", err)
		os.Exit(1)
	}
	if *list {
		for _, q := range queries {
			fmt.Printf("%s\t%s\n", q.Name(), q.Expr)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failed := 0
	for _, q := range queries {
		n, err := Run(ctx, http.DefaultClient, *prom, q.Expr)
		if err != nil {
			failed++
			fmt.Printf("FAIL  %s: %v\n      %s\n", q.Name(), err, q.Expr)
			continue
		}
		fmt.Printf("ok    %s: %d series\n", q.Name(), n)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "dashcheck: %d of %d queries returned no data\n", failed, len(queries))
		os.Exit(1)
	}
	fmt.Printf("dashcheck: all %d queries returned data\n", len(queries))
}

// Query is one panel target.
type Query struct {
	Panel, RefID string
	// Expr is the target's PromQL with the variables substituted.
	Expr string
}

// Name is how reports name q: its panel's title and its refId.
func (q Query) Name() string { return q.Panel + " [" + q.RefID + "]" }

type dashboard struct {
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var variable = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// Load reads a dashboard and returns every panel's targets, rows' nested
// panels included, with $__rate_interval replaced by rateInterval and every
// other variable by all. A panel other than a row without a query is an
// error: it could only ever be empty.
func Load(path, rateInterval, all string) ([]Query, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Query
	var walk func([]panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			if p.Type == "row" {
				if err := walk(p.Panels); err != nil {
					return err
				}
				continue
			}
			if len(p.Targets) == 0 {
				return fmt.Errorf("%s: panel %q has no targets", path, p.Title)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("%s: panel %q target %s has no expr", path, p.Title, t.RefID)
				}
				expr := variable.ReplaceAllStringFunc(t.Expr, func(v string) string {
					if variable.FindStringSubmatch(v)[1] == "__rate_interval" {
						return rateInterval
					}
					return all
				})
				out = append(out, Query{Panel: p.Title, RefID: t.RefID, Expr: expr})
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return out, nil
}

// Run evaluates expr as an instant query at base and returns how many series
// it returned. No series, or only NaN values (a quantile or ratio of nothing),
// is an error.
func Run(ctx context.Context, c *http.Client, base, expr string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimSuffix(base, "/")+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query error: %s", r.Error)
	}
	if r.Data.ResultType != "vector" {
		return 0, fmt.Errorf("result type %q, want vector", r.Data.ResultType)
	}
	if len(r.Data.Result) == 0 {
		return 0, errors.New("no series")
	}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) {
			return len(r.Data.Result), nil
		}
	}
	return 0, fmt.Errorf("%d series, every value NaN", len(r.Data.Result))
}
