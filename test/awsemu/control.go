package awsemu

import (
	"encoding/json"
	"net/http"
	"time"
)

// serveControl answers the test-only /_emu/ endpoints (see the package doc).
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to tell it
	}
	bad := func(msg string) { http.Error(w, msg, http.StatusBadRequest) }
	body := http.MaxBytesReader(w, r.Body, maxBody)

	switch r.URL.Path {
	case "/_emu/health":
		_, _ = w.Write([]byte("ok"))
	case "/_emu/calls":
		switch r.Method {
		case http.MethodGet:
			if op := r.URL.Query().Get("op"); op != "" {
				reply(map[string]any{"op": op, "calls": s.Calls(op)})
				return
			}
			reply(s.CallCounts())
		case http.MethodDelete, http.MethodPost:
			s.ResetCalls()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "GET or DELETE", http.StatusMethodNotAllowed)
		}
	case "/_emu/faults":
		switch r.Method {
		case http.MethodPost:
			var f Fault
			if err := json.NewDecoder(body).Decode(&f); err != nil {
				bad("fault: " + err.Error())
				return
			}
			if err := s.InjectFault(f); err != nil {
				bad(err.Error())
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodDelete:
			s.ClearFaults()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "POST or DELETE", http.StatusMethodNotAllowed)
		}
	case "/_emu/latency":
		var req struct {
			Op       string `json:"op"`
			Duration string `json:"duration"`
		}
		if r.Method != http.MethodPost {
			http.Error(w, "POST", http.StatusMethodNotAllowed)
			return
		}
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			bad("latency: " + err.Error())
			return
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil {
			bad("latency: " + err.Error())
			return
		}
		s.SetLatency(req.Op, d)
		w.WriteHeader(http.StatusNoContent)
	case "/_emu/seed":
		if r.Method != http.MethodPost {
			http.Error(w, "POST", http.StatusMethodNotAllowed)
			return
		}
		var seed Seed
		if err := json.NewDecoder(body).Decode(&seed); err != nil {
			bad("seed: " + err.Error())
			return
		}
		if err := s.Seed(&seed); err != nil {
			bad("seed: " + err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "/_emu/caller":
		c, ok := s.LastCaller(r.URL.Query().Get("op"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		reply(c)
	case "/_emu/web-identity":
		claims := s.LastWebIdentityClaims()
		if claims == nil {
			http.NotFound(w, r)
			return
		}
		reply(claims)
	case "/_emu/expire-credentials":
		if r.Method != http.MethodPost {
			http.Error(w, "POST", http.StatusMethodNotAllowed)
			return
		}
		s.ExpireCredentials()
		w.WriteHeader(http.StatusNoContent)
	case "/_emu/reset":
		if r.Method != http.MethodPost {
			http.Error(w, "POST", http.StatusMethodNotAllowed)
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}
