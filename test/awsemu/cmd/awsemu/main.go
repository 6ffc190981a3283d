// Command awsemu serves the AWS emulator (Secrets Manager, SSM Parameter Store, STS)
// for local runs and end-to-end tests:
//
//	go run ./test/awsemu/cmd/awsemu --addr 127.0.0.1:4566 --seed seed.json
//
// Point clients at http://<addr> (BaseEndpoint / spec.provider.aws.endpoint) and sign
// with the static key pair printed at start (or --access-key-id/--secret-access-key).
// The seed format and the /_emu/ control endpoints are documented in package awsemu.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/secretsync/secretsync/test/awsemu"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4566", "listen address (host:port)")
	seedPath := flag.String("seed", "", "JSON seed file (see package awsemu)")
	region := flag.String("region", awsemu.DefaultRegion, "region used in ARNs")
	account := flag.String("account-id", awsemu.DefaultAccountID, "account id used in ARNs")
	akid := flag.String("access-key-id", awsemu.DefaultAccessKeyID, "static access key id accepted")
	secret := flag.String("secret-access-key", awsemu.DefaultSecretAccessKey, "static secret access key (not verified)")
	audience := flag.String("web-identity-audience", "", "if set, AssumeRoleWithWebIdentity accepts only ServiceAccount tokens with this audience")
	flag.Parse()

	opts := awsemu.Options{Region: *region, AccountID: *account, AccessKeyID: *akid, SecretAccessKey: *secret}
	if *audience != "" {
		opts.WebIdentityValidator = awsemu.AudienceValidator(*audience)
	}
	if *seedPath != "" {
		seed, err := awsemu.LoadSeed(*seedPath)
		if err != nil {
			log.Fatal(err)
		}
		opts.Seed = seed
	}
	srv := newServer(opts)
	if err := srv.Listen(*addr); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "awsemu listening on %s (access key id %s)\n", srv.URL(), *akid)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}

// newServer turns an invalid seed (a panic in awsemu.New) into a clean exit.
func newServer(opts awsemu.Options) (srv *awsemu.Server) {
	seed := opts.Seed
	opts.Seed = nil
	srv = awsemu.New(opts)
	if seed != nil {
		if err := srv.Seed(seed); err != nil {
			log.Fatalf("seed: %v", err)
		}
	}
	return srv
}
