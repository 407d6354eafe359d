package agentauthz.main

import data.agentauthz.config

decision := {"allow": true if {
