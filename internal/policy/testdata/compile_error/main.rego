package agentauthz.main

# Parses, but x is unsafe: a compile error, not a parse error.
decision := {"allow": x}
