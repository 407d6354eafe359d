# A second complete definition of decision that disagrees with main.rego's
# only for input.tool == "boom", an input no decision case uses: the bundle
# activates, and exactly those evaluations raise eval_conflict_error.
package agentauthz.main

decision := {"allow": false, "role": null, "denied_by": ["conflict"], "reasons": ["a second definition"]} if input.tool == "boom"
