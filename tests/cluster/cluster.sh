#!/bin/bash
# A pipeline that spans hosts, on one machine with real network stacks
# (docs/cluster.md): four network namespaces (hosts) joined by veth pairs
# to a bridge in a fifth (the switch), addresses 10.77.0.x/24 that exist
# only inside them. A member (npmember, emu:16) runs in each; the first
# three form the chain, the fourth is the spare. The head runs in the
# first host. UCX is pinned to TCP on the veth (UCX_TLS=tcp,
# UCX_NET_DEVICES), so every frame crosses a network stack, never shared
# memory. A 40-layer model (Granite-3.3-8B's depth, width 128) spread over
# the members' 48 cards:
#   0. a malformed cluster file and a model mismatch refused;
#   1. tokens and every logit bit-exact with the integer reference, with
#      12 frames in flight against 8 receive slots a link (back-pressure);
#   1b. npd --cluster serves a completion over HTTP through the members;
#   2. kill -9 of the middle member mid-run: detected, its cards moved to
#      the spare, requests replayed: greedy output identical to run 1;
#   2b. a card failing inside a member: reported, every member reset,
#      requests replayed, identical output;
#   3. a member cut off (link down) with no spare left: found silent by
#      the heartbeat timeout, every request fails with an error, nothing
#      hangs.
# Without root or ip netns (or with NP_CLUSTER_LOOPBACK set), the same
# runs on the loopback interface: the hosts are ports of 127.0.0.1, and
# the cut-off member is stopped (SIGSTOP), silent all the same.
# Namespaces and processes are removed on every exit (trap).
# usage: cluster.sh NPMEMBER NP_CLUSTER_RUN NPTOOL SAMPLE_TEXT NPD
set -u
member=$1 run=$2 nptool=$3 text=$4 npd=$5

tag=npc$$
work=$(mktemp -d)
pids=()
hosts=(1 2 3 4)
base=$((20000 + $$ % 20000)) # loopback mode's ports
mode=netns
if [ -n "${NP_CLUSTER_LOOPBACK:-}" ] || [ "$(id -u)" -ne 0 ] ||
	! command -v ip >/dev/null || ! ip netns add "${tag}sw" 2>/dev/null; then
	mode=loopback
	echo "cluster: no root or no ip netns: hosts on 127.0.0.1 ports"
fi

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for h in "${hosts[@]}"; do ip netns del "${tag}h$h" 2>/dev/null; done
	ip netns del "${tag}sw" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "cluster: FAIL: $*"
	for f in "$work"/*.log; do
		echo "--- $f"
		tail -n 30 "$f"
	done
	exit 1
}

addr() { # host [n]: its listening address (n: its n-th member, 0 first)
	local n=${2:-0}
	if [ $mode = netns ]; then
		echo "10.77.0.$1:$((7000 + n))"
	else
		echo "127.0.0.1:$((base + $1 + 10 * n))"
	fi
}
on_host() { # host cmd...: run cmd on that host (exec: in a subshell)
	local h=$1
	shift
	if [ $mode = netns ]; then
		exec ip netns exec "${tag}h$h" env UCX_NET_DEVICES="${tag}a$h" "$@"
	else
		exec "$@"
	fi
}

# the switch and the hosts
if [ $mode = netns ]; then
	ip -n "${tag}sw" link add br0 type bridge || fail "bridge"
	ip -n "${tag}sw" link set br0 up
	for h in "${hosts[@]}"; do
		ns=${tag}h$h
		ip netns add "$ns" || fail "netns $ns"
		ip link add "${tag}a$h" type veth peer name "${tag}b$h" ||
			fail "veth"
		ip link set "${tag}a$h" netns "$ns"
		ip link set "${tag}b$h" netns "${tag}sw"
		ip -n "${tag}sw" link set "${tag}b$h" master br0 up
		ip -n "$ns" addr add "10.77.0.$h/24" dev "${tag}a$h"
		ip -n "$ns" link set "${tag}a$h" up
		ip -n "$ns" link set lo up
	done
fi

export NP_EVENT_LOG=off UCX_TLS=tcp UCX_WARN_UNUSED_ENV_VARS=n
"$nptool" model mkgguf --arch granite --shape tiny --layers 40 --dim 128 \
	--heads 4 --kv-heads 2 --ffn 384 --vocab 1024 --text "$text" \
	--out "$work/model.gguf" >"$work/mkgguf.log" 2>&1 || fail "mkgguf"

start_member() { # host n [npmember options]: its n-th member
	local h=$1 n=$2
	shift 2
	cp "$work/model.gguf" "$work/h$h.gguf"
	on_host "$h" "$member" --listen "$(addr "$h" "$n")" -m "$work/h$h.gguf" \
		-d emu:16 "$@" >"$work/member$h.log" 2>&1 &
	pids[$h]=$!
}
wait_serving() { # host
	local h=$1
	for _ in $(seq 300); do
		grep -q serving "$work/member$h.log" && break
		kill -0 "${pids[$h]}" 2>/dev/null || fail "member $h exited"
		sleep 0.1
	done
	grep -q serving "$work/member$h.log" || fail "member $h not serving"
}
for h in "${hosts[@]}"; do start_member "$h" 0; done
for h in "${hosts[@]}"; do wait_serving "$h"; done

cat >"$work/chain.cluster" <<EOT
# three hosts in pipeline order, one spare
member $(addr 1) cards=16
member $(addr 2) cards=16
member $(addr 3) cards=16
spare  $(addr 4) cards=16
EOT

run_head() { # log, args...
	local log=$1
	shift
	(on_host 1 timeout 120 "$run" -m "$work/model.gguf" -n 12 -M 12 \
		-t 12 "$@") >"$work/$log.log" 2>&1
}

# 0. refusals: a malformed cluster file; a head whose model differs from
# the members' copies (refused at the handshake, naming both sides)
printf 'member %s 16\n' "$(addr 1)" >"$work/bad.cluster"
run_head run0a --cluster "$work/bad.cluster" && fail "bad file accepted"
grep -q "is not 'member|spare ADDRESS:PORT cards=N'" "$work/run0a.log" ||
	fail "bad file: no clear error"
"$nptool" model mkgguf --arch granite --shape tiny --layers 40 --dim 128 \
	--heads 4 --kv-heads 2 --ffn 384 --vocab 1024 --seed 2 --text "$text" \
	--out "$work/other.gguf" >>"$work/mkgguf.log" 2>&1 || fail "mkgguf 2"
(on_host 1 timeout 120 \
	"$run" -m "$work/other.gguf" --cluster "$work/chain.cluster") \
	>"$work/run0b.log" 2>&1 && fail "a different model accepted"
grep -q "refused: model .* here has hash .*, the head's has" \
	"$work/run0b.log" || fail "model mismatch: no error naming both sides"
echo "cluster: 0. malformed cluster file and model mismatch refused"
grep -h "refused" "$work/run0b.log" | head -1

# 1. bit-exact, every logit
run_head run1 --cluster "$work/chain.cluster" --full-logits --check \
	--out "$work/run1.tokens" || fail "run 1"
grep -q "bit-exact" "$work/run1.log" || fail "run 1 not checked"
grep -q "cluster members 3 " "$work/run1.log" || fail "run 1: not 3 members"
# 12 frames in flight, 8 receive slots a link: the first member's credits
# ran out and held the head back (and bit-exact: no slot overwritten)
grep -q "credit_waits [1-9]" "$work/run1.log" || fail "run 1: no back-pressure"
echo "cluster: 1. 40 layers on 3 hosts (48 cards): bit-exact"
grep -h "^requests\|^cluster\|^check" "$work/run1.log"
sleep 0.2 # the members log their figures when the head says goodbye
grep -h "frames served" "$work"/member[123].log

# 1b. npd as the head: a completion over HTTP through the three members
npd_port=$((base + 5))
[ $mode = netns ] && npd_port=18080
on_host 1 "$npd" \
	--cluster "$work/chain.cluster" --model "$work/model.gguf" \
	--listen 127.0.0.1 --port "$npd_port" --slots 8 --micro-batches 4 \
	--access-log /dev/null >"$work/npd.log" 2>&1 &
pids+=($!)
npd_pid=$!
for _ in $(seq 300); do
	grep -q "ready on" "$work/npd.log" && break
	kill -0 "$npd_pid" 2>/dev/null || fail "npd exited"
	sleep 0.1
done
grep -q "ready on 42 cards" "$work/npd.log" || fail "npd not ready on 42 cards"
(on_host 1 env NPD_PORT="$npd_port" python3 -) >"$work/npd-client.log" 2>&1 <<'PY' ||
import json, os, urllib.request
req = urllib.request.Request(
    "http://127.0.0.1:%s/v1/completions" % os.environ["NPD_PORT"],
    data=json.dumps({"prompt": "Hello", "max_tokens": 8,
                     "temperature": 0}).encode(),
    headers={"Content-Type": "application/json"})
r = json.load(urllib.request.urlopen(req, timeout=60))
assert r["usage"]["completion_tokens"] == 8, r
print("npd: 8 tokens:", json.dumps(r["choices"][0]["text"]))
PY
	fail "npd --cluster did not serve a completion"
kill -TERM "$npd_pid"
wait "$npd_pid" || fail "npd did not stop cleanly"
echo "cluster: 1b. npd --cluster served a completion through the members"
cat "$work/npd-client.log"

# 2. the middle member killed mid-run: the spare takes its cards
run_head run2 --cluster "$work/chain.cluster" --check --out "$work/run2.tokens" \
	--kill-at 30 --kill-cmd "kill -9 ${pids[2]}" || fail "run 2"
grep -q "recoveries 1 " "$work/run2.log" || fail "run 2: no recovery"
grep -q "replacements 1" "$work/run2.log" || fail "run 2: no spare taken"
grep -q "spare $(addr 4) takes member $(addr 2)'s cards" \
	"$work/run2.log" || fail "run 2: the dead host not named, not replaced"
cmp -s "$work/run1.tokens" "$work/run2.tokens" ||
	fail "run 2: greedy output differs from run 1"
echo "cluster: 2. member 2 killed, spare took over: identical output"
grep -h "recovered\|^requests\|^cluster\|^check\|failed\|spare" "$work/run2.log"

# 2b. a card failing inside a member (its forwarding engine refuses the
# 30th write): the member stops sending, reports it, the head resets every
# member into a new epoch and replays: identical output, no spare used
# (a new port: the killed member's may still be held by the kernel)
start_member 2 1 --inject "3:dma-error:engine=1,n=30"
wait_serving 2
cat >"$work/chain2b.cluster" <<EOT
member $(addr 1) cards=16
member $(addr 2 1) cards=16
member $(addr 3) cards=16
EOT
run_head run2b --cluster "$work/chain2b.cluster" --check \
	--out "$work/run2b.tokens" || fail "run 2b"
grep -q "recoveries 1 " "$work/run2b.log" || fail "run 2b: no recovery"
grep -q "member 2 of 3 at $(addr 2 1) .* a card failed there" \
	"$work/run2b.log" || fail "run 2b: the failed card's host not named"
cmp -s "$work/run1.tokens" "$work/run2b.tokens" ||
	fail "run 2b: greedy output differs from run 1"
echo "cluster: 2b. a card failed on member 2: reset, replayed, identical output"
grep -h "head: cluster\|^check" "$work/run2b.log"

cut_cmd="ip -n ${tag}h3 link set ${tag}a3 down"
[ $mode = netns ] || cut_cmd="kill -STOP ${pids[3]}"
# 3. a member cut off (its link down: no reset, only silence) and no
# spare left: detected by the heartbeat timeout, every request fails with
# an error, nothing hangs
cat >"$work/nospare.cluster" <<EOT
member $(addr 1) cards=16
member $(addr 4) cards=16
member $(addr 3) cards=16
EOT
run_head run3 --cluster "$work/nospare.cluster" \
	--kill-at 30 --kill-cmd "$cut_cmd"
rc=$?
[ "$rc" -eq 1 ] || fail "run 3: exit $rc, expected 1 (124: it hung)"
grep -q "no spare is left" "$work/run3.log" || fail "run 3: no clear error"
grep -q "request 0 failed" "$work/run3.log" || fail "run 3: requests not failed"
grep -q "silent past the timeout" "$work/run3.log" ||
	fail "run 3: not detected by the heartbeat timeout"
echo "cluster: 3. member 3 cut off, no spare: requests failed, no hang"
grep -h "cluster:\|request 0" "$work/run3.log"
echo "cluster: PASS"
