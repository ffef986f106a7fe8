package main

import (
	"fmt"
	"net"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// httpExposure is what status says about `serve --http`: the listeners
// running now (each serve records its own) and what the configuration
// allows. A non-loopback listener without client authentication is
// critical, served or merely configured: anyone who can reach it can call
// tools.
func httpExposure(cfg *config.Config, d *state.Dir) (live []mcpserver.ListenerRecord, critical, attention []string) {
	live, err := mcpserver.LiveListeners(d)
	if live == nil {
		live = []mcpserver.ListenerRecord{}
	}
	if err != nil {
		attention = append(attention, "cannot tell which `serve --http` processes run: "+err.Error())
	}
	for _, l := range live {
		if !l.Loopback && !l.Authenticated {
			critical = append(critical, fmt.Sprintf("serve (pid %d) is serving %s without client authentication: anyone who can reach it can call tools", l.PID, l.Addr))
		}
	}
	h := cfg.HTTP
	if !h.AllowsUnauthenticated() || httpAuthenticated(cfg) || h.ClientCA != "" {
		return live, critical, attention
	}
	key := "http.allow_unauthenticated"
	if !h.AllowUnauthenticated {
		key = "http.allow_non_loopback (deprecated)"
	}
	if host, _, err := net.SplitHostPort(h.Listen); err == nil && !isLoopbackHost(host) {
		critical = append(critical, fmt.Sprintf("the configuration serves %s without client authentication (%s: true): configure authentication or listen on 127.0.0.1", h.Listen, key))
	} else {
		attention = append(attention, fmt.Sprintf("%s is true: `serve --http` on a non-loopback address would run without client authentication", key))
	}
	return live, critical, attention
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
