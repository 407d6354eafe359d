// Command agentauthz issues, resolves and authorizes per-agent bearer tokens
// for AI-agent service accounts. `agentauthz serve` runs the REST API; the
// other commands manage users, agents, tokens and grants on the same store.
//
// main assembles: it reads flags and environment, builds the store, the
// policy engine and the service, and maps errors to exit codes. Nothing in
// internal/ reads configuration on its own.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.close()
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "Error: %v\n", err)
	if code == exitUsage && isUsage(err) {
		fmt.Fprintln(stderr, "Run 'agentauthz --help' for usage.")
	}
	return code
}
