package cli

import "github.com/spf13/cobra"

func (e *env) explainCmd() *cobra.Command { return &cobra.Command{Use: "explain"} }
func (e *env) statusCmd() *cobra.Command  { return &cobra.Command{Use: "status"} }
func (e *env) syncCmd() *cobra.Command    { return &cobra.Command{Use: "sync"} }
