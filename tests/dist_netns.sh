#!/usr/bin/env bash
# dist_netns.sh BUILD_DIR - two "hosts" on one machine: network namespaces joined by a veth
# pair, one rank in each, training over TCP between them, started by mpirun's ssh launcher
# (with a stand-in for ssh that enters the other namespace): the path a two-node cluster uses.
# Prints the bytes that crossed the link per step. Needs root and iproute2; skips otherwise.
set -eu
. "$(dirname "$0")/dist_lib.bash"
mpi_or_skip "$1"
[ "$(id -u)" -eq 0 ] || skip "needs root for ip netns"
command -v ip >/dev/null || skip "ip (iproute2) not found"
tag="cg$$"
a="${tag}a" b="${tag}b" net="10.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
dir=$(mktemp -d)
cleanup() {
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$a" 2>/dev/null || skip "ip netns add is not permitted here"
ip netns add "$b"
ip link add "${tag}x" type veth peer name "${tag}y" || skip "cannot create a veth pair"
ip link set "${tag}x" netns "$a"
ip link set "${tag}y" netns "$b"
ip -n "$a" addr add "$net.1/24" dev "${tag}x"
ip -n "$b" addr add "$net.2/24" dev "${tag}y"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "${tag}x" up
ip -n "$b" link set "${tag}y" up

# mpirun "logs in" to a host with this agent, as it would with ssh: the host's address names
# its namespace, and the remote command runs there
cat >"$dir/netns-ssh" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in $net.1) ns=$a ;; $net.2) ns=$b ;; *) echo "netns-ssh: unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$dir/netns-ssh"

tx() { ip netns exec "$a" cat "/sys/class/net/${tag}x/statistics/tx_bytes"; }
before=$(tx)
# TCP only (no shared memory between the "hosts"); ranks yield when idle, or two ranks
# spinning on a small machine starve the kernel's packet processing (4 ms per message)
ip netns exec "$a" timeout -k 5 180 mpirun --allow-run-as-root -np 2 --host "$net.1:1,$net.2:1" \
  --mca plm_rsh_agent "$dir/netns-ssh" --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" \
  --mca oob_tcp_if_include "$net.0/24" --mca mpi_yield_when_idle 1 -x OPENBLAS_NUM_THREADS -x CGRAD_NUM_THREADS \
  "$bin" train --distributed --limit 3000 --batch 100 --epochs 2 --quiet --seed 7 --check-every 1 \
  --log "$dir/n.csv" >"$dir/n.out" 2>&1 || { cat "$dir/n.out"; exit 1; }
after=$(tx)
cat "$dir/n.out"
grep -q 'distributed over 2 ranks' "$dir/n.out"
# the same numbers as two ranks on one host (sums of two parts are the same either way)
ranks 2 "$bin" train --distributed --limit 3000 --batch 100 --epochs 2 --quiet --seed 7 --log "$dir/l.csv" >/dev/null
same_columns "$dir/n.csv" "$dir/l.csv" 1-5
steps=60
echo "rank 0 sent $(((after - before) / steps)) bytes per step over the veth link ($((after - before)) in all, $steps steps, start-up and evaluation included)"
echo ok
