# Must never be loaded by the engine: a Rego test file in a bundle is skipped.
# If it were loaded, this second definition of decision would conflict.
package agentauthz.main

test_marker if true

decision := "loaded a _test.rego file"
