package awsemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
)

// Seed is initial data; see the package documentation for its JSON form.
type Seed struct {
	Secrets    []SeedSecret    `json:"secrets,omitempty"`
	Parameters []SeedParameter `json:"parameters,omitempty"`
}

// SeedSecret is a Secrets Manager secret: exactly one of Value and BinaryBase64.
type SeedSecret struct {
	Name         string            `json:"name"`
	Value        *string           `json:"value,omitempty"`
	BinaryBase64 string            `json:"binaryBase64,omitempty"`
	Description  string            `json:"description,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
}

// SeedParameter is an SSM parameter. Type defaults to String.
type SeedParameter struct {
	Name   string            `json:"name"`
	Type   string            `json:"type,omitempty"`
	Value  string            `json:"value"`
	Tags   map[string]string `json:"tags,omitempty"`
	Labels []string          `json:"labels,omitempty"`
}

// LoadSeed reads a seed file.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var seed Seed
	if err := json.Unmarshal(b, &seed); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return &seed, nil
}

// Seed adds seed's secrets and parameters; an existing name gets a new version.
func (s *Server) Seed(seed *Seed) error {
	for i, sec := range seed.Secrets {
		var bin []byte
		if sec.BinaryBase64 != "" {
			if sec.Value != nil {
				return fmt.Errorf("secrets[%d] %q: set value or binaryBase64, not both", i, sec.Name)
			}
			b, err := base64.StdEncoding.DecodeString(sec.BinaryBase64)
			if err != nil {
				return fmt.Errorf("secrets[%d] %q: binaryBase64: %w", i, sec.Name, err)
			}
			bin = b
		} else if sec.Value == nil {
			return fmt.Errorf("secrets[%d] %q: set value or binaryBase64", i, sec.Name)
		}
		if err := s.seedSecret(sec.Name, sec.Value, bin, sec.Tags, sec.Description); err != nil {
			return fmt.Errorf("secrets[%d] %q: %w", i, sec.Name, err)
		}
	}
	for i, p := range seed.Parameters {
		if err := s.seedParam(p.Name, p.Type, p.Value, p.Tags, p.Labels); err != nil {
			return fmt.Errorf("parameters[%d] %q: %w", i, p.Name, err)
		}
	}
	return nil
}

// Reset deletes every secret, parameter and issued credential (counters, faults and
// latency are kept; see ResetCalls and ClearFaults).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = map[string]*smSecret{}
	s.params = map[string]*ssmParam{}
	s.creds = map[string]*issuedCred{}
}
