package agentauthz.main

verdict := {"allow": true}
