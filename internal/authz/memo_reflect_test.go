package authz

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// TestMemoKeyFollowsEveryFactReflectively changes every field reachable
// from facts, one at a time, found by reflection (so a field added to facts
// or to the records it holds is covered without touching this test), and
// asserts that the memo key changes exactly when the input document does:
// a fact input() renders but key() forgets would let the memo answer one
// caller with another's decision.
func TestMemoKeyFollowsEveryFactReflectively(t *testing.T) {
	full := func() *facts {
		at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		caps := []string{"read"}
		owner := &model.User{ID: 3, Login: "chubes", Name: "C", Roles: []string{"editor"}, Status: "active", CreatedAt: at}
		agent := &model.Agent{ID: 7, Slug: "bot", Name: "Bot", OwnerID: 3, Status: "active", CreatedAt: at, UpdatedAt: at,
			ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}}
		parent := int64(11)
		used, expires, revoked := at, at.Add(time.Hour), at.Add(time.Minute)
		tok := &model.Token{ID: 12, AgentID: 7, Hash: "h", Prefix: "p", Label: "l", Capabilities: &caps,
			LastUsedAt: &used, ExpiresAt: &expires, CreatedAt: at, RevokedAt: &revoked, ParentID: &parent}
		return &facts{
			ability: "authorize",
			principal: &principal.Principal{Kind: principal.KindToken, ID: "token:12", User: owner,
				Audiences: []string{"audience:acme"}, Token: tok, Agent: agent},
			agent: agent, owner: owner,
			grants: []model.Grant{{AgentID: 7, Principal: "user:5", Role: "operator", GrantedAt: at}},
			action: "use_tools", tool: "web_search", hasTool: true, minimumRole: "viewer",
			resource:   &model.User{ID: 4, Roles: []string{"author"}, Status: "active"},
			candidates: []model.Agent{*agent},
			owners:     map[int64]*model.User{3: owner},
			requests:   [][2]*ast.Term{item("grant_request", ast.ObjectTerm(item("role", str("admin"))))},
		}
	}
	base := full()
	baseKey, ok := base.key(1)
	if !ok {
		t.Fatal("the full facts are not memoizable")
	}
	baseInput := base.input()
	leaves := 0
	for i := 0; ; i++ {
		f := full()
		path, mutated := mutateLeaf(reflect.ValueOf(f).Elem(), "facts", new(int), i)
		if !mutated {
			break
		}
		leaves++
		key, _ := f.key(1)
		inputChanged := ast.Compare(f.input(), baseInput) != 0
		if keyChanged := key != baseKey; keyChanged != inputChanged {
			t.Errorf("changing %s: input changed %v, memo key changed %v", path, inputChanged, keyChanged)
		}
	}
	if leaves < 40 {
		t.Fatalf("only %d fields mutated: the walk is not reaching the facts", leaves)
	}
	t.Logf("%d fields mutated one at a time", leaves)
}

// mutateLeaf walks v depth first and changes its target-th leaf (counting
// with *seen), reporting the leaf's path; false when v has fewer leaves.
// Pointers, slices and maps are shared between fields of the same facts
// (the owner is both principal.User and owner): the fresh copy made for
// each mutation keeps that sharing, as the service does.
func mutateLeaf(v reflect.Value, path string, seen *int, target int) (string, bool) {
	if v.Type() == reflect.TypeOf(time.Time{}) {
		return leaf(v, path, seen, target, func() { v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Microsecond))) })
	}
	if v.Type() == reflect.TypeOf([][2]*ast.Term{}) {
		return leaf(v, path, seen, target, func() {
			v.Set(reflect.Append(v, reflect.ValueOf([2]*ast.Term{str("extra"), ast.NullTerm()})))
		})
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "", false
		}
		if p, ok := leaf(v, path+"=nil", seen, target, func() { v.Set(reflect.Zero(v.Type())) }); ok {
			return p, true
		}
		return mutateLeaf(v.Elem(), path, seen, target)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fv := v.Field(i)
			if !fv.CanSet() {
				fv = reflect.NewAt(fv.Type(), fv.Addr().UnsafePointer()).Elem()
			}
			if p, ok := mutateLeaf(fv, path+"."+v.Type().Field(i).Name, seen, target); ok {
				return p, true
			}
		}
		return "", false
	case reflect.Slice:
		if p, ok := leaf(v, path+"+elem", seen, target, func() {
			if v.Len() > 0 {
				v.Set(reflect.Append(v, v.Index(0)))
			} else {
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			}
		}); ok {
			return p, true
		}
		for i := 0; i < v.Len(); i++ {
			if p, ok := mutateLeaf(v.Index(i), fmt.Sprintf("%s[%d]", path, i), seen, target); ok {
				return p, true
			}
		}
		return "", false
	case reflect.Map:
		for _, k := range v.MapKeys() {
			elem := reflect.New(v.Type().Elem()).Elem()
			elem.Set(v.MapIndex(k))
			if elem.Kind() == reflect.Pointer && !elem.IsNil() {
				cp := reflect.New(elem.Elem().Type())
				cp.Elem().Set(elem.Elem())
				if p, ok := mutateLeaf(cp.Elem(), fmt.Sprintf("%s[%v]", path, k), seen, target); ok {
					v.SetMapIndex(k, cp)
					return p, true
				}
			}
		}
		return "", false
	case reflect.String:
		return leaf(v, path, seen, target, func() { v.SetString(v.String() + "x") })
	case reflect.Int, reflect.Int64:
		return leaf(v, path, seen, target, func() { v.SetInt(v.Int() + 1) })
	case reflect.Bool:
		return leaf(v, path, seen, target, func() { v.SetBool(!v.Bool()) })
	}
	return "", false
}

func leaf(_ reflect.Value, path string, seen *int, target int, change func()) (string, bool) {
	n := *seen
	*seen = n + 1
	if n != target {
		return "", false
	}
	change()
	return path, true
}
