package main

import (
	"fmt"

	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/sinks/postgres"
	"github.com/strata-es/strata/projections"
)

// newSinks builds the sinks the config file asks for, by view; close
// releases their connections once the node stopped.
func newSinks(c config.Config) (sinks map[string][]projections.Sink, closeAll func(), err error) {
	sinks = map[string][]projections.Sink{}
	var all []projections.Sink
	closeAll = func() {
		for _, s := range all {
			s.Close()
		}
	}
	if pg := c.Sinks.Postgres; pg != nil {
		url, err := pg.ConnString()
		if err != nil {
			return nil, closeAll, err
		}
		// One sink per view: a Sink keeps the view it was opened for.
		for _, view := range pg.Views {
			s, err := postgres.New(postgres.Config{URL: url, Schema: pg.Schema})
			if err != nil {
				closeAll()
				return nil, func() {}, fmt.Errorf("sinks.postgres: %w", err)
			}
			all = append(all, s)
			sinks[view] = append(sinks[view], s)
		}
	}
	return sinks, closeAll, nil
}
