# A second complete definition of decision that disagrees with main.rego's
# for every input that names an ability: the bundle compiles and validates,
# and every such evaluation raises eval_conflict_error.
package agentauthz.main

decision := {"allow": false, "role": null, "denied_by": ["conflict"], "reasons": ["a second definition"]} if input.ability
