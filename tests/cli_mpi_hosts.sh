#!/bin/sh
# Two "machines" without a second machine (ctest label mpi): two network namespaces joined by
# a veth pair, each a host with its own address, an rsh agent for mpirun that enters the
# namespace (--mca plm_rsh_agent), and MPI forced onto TCP over the veth addresses (no shared
# memory). mpirun -np 2 --hostfile over them trains the one-process run's losses (1e-5), and
# each rank runs in its own namespace. Needs root and iproute2 (ip netns): skips (77) without.
# usage: cli_mpi_hosts.sh VKTRAIN SOURCE_DIR
set -u
BIN=$1
SRC=$2
skip() { echo "SKIP: $*"; exit 77; }
command -v mpirun >/dev/null 2>&1 || skip "no mpirun (apt-get install openmpi-bin)"
command -v ip >/dev/null 2>&1 || skip "no ip (apt-get install iproute2)"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
T=$(mktemp -d /tmp/vkt_climpihosts_XXXXXX)
id=$$
NA=vkt${id}a NB=vkt${id}b      # namespaces, and the veth ends inside them
NET=10.77.$((id % 250))
cleanup() { ip netns del "$NA" 2>/dev/null; ip netns del "$NB" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ip netns add "$NA" 2>/dev/null || skip "ip netns add failed (no CAP_SYS_ADMIN here?)"
ip netns add "$NB" &&
    ip link add "v${id}a" type veth peer name "v${id}b" &&
    ip link set "v${id}a" netns "$NA" && ip link set "v${id}b" netns "$NB" &&
    ip -n "$NA" addr add "$NET.1/24" dev "v${id}a" && ip -n "$NB" addr add "$NET.2/24" dev "v${id}b" &&
    ip -n "$NA" link set "v${id}a" up && ip -n "$NB" link set "v${id}b" up &&
    ip -n "$NA" link set lo up && ip -n "$NB" link set lo up ||
    { echo "FAIL: cannot build the two-namespace network"; exit 1; }

# the rsh agent: "agent HOST COMMAND..." runs COMMAND inside HOST's namespace
cat >"$T/agent.sh" <<SH
#!/bin/sh
host=\$1; shift
case \$host in
$NET.1) ns=$NA ;;
$NET.2) ns=$NB ;;
*) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
SH
chmod +x "$T/agent.sh"
printf '%s slots=1\n%s slots=1\n' "$NET.1" "$NET.2" >"$T/hosts"
export XDG_CACHE_HOME="$T/cache" OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# mpirun itself on the first host; the second reached through the agent, over TCP only
mpi() {
    timeout 120 ip netns exec "$NA" mpirun --hostfile "$T/hosts" -np 2 \
        --mca plm_rsh_agent "$T/agent.sh" --mca btl tcp,self \
        --mca btl_tcp_if_include "$NET.0/24" --mca oob_tcp_if_include "$NET.0/24" \
        -x XDG_CACHE_HOME -x OMP_NUM_THREADS "$@"
}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

out=$(mpi sh -c 'echo "rank $OMPI_COMM_WORLD_RANK: $(ip -o -4 addr show | grep -o "inet [0-9.]*" | grep -v 127.0.0.1)"' 2>&1)
echo "$out"
echo "$out" | grep -qx "rank 0: inet $NET.1" && echo "$out" | grep -qx "rank 1: inet $NET.2" ||
    fail "the ranks do not run one in each namespace"

cat >"$T/run.ini" <<INI
[model]
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32
[data]
train = $SRC/data/tinyshakespeare.txt
[train]
batch_size = 4
seq_len = 32
max_steps = 6
eval_interval = 3
eval_batches = 2
[backend]
device = cpu:0
INI
"$BIN" --set train.batch_size=8 --set train.out_dir="$T/one" "$T/run.ini" >"$T/one.log" 2>&1 ||
    fail "the one-process run failed"
mpi "$BIN" --set train.out_dir="$T/two" "$T/run.ini" >"$T/two.log" 2>&1 ||
    { fail "the two-host run failed:"; tail -5 "$T/two.log"; }
# every step's loss within 1e-5 relative (plus the file's rounding)
awk 'function f(l, k,   i) { i = index(l, "\"" k "\":"); return i ? substr(l, i + length(k) + 3) + 0 : "" }
     FNR == NR { a[FNR] = f($0, "loss"); n = FNR; next }
     { m = FNR; d = f($0, "loss") - a[FNR]; if (d < 0) d = -d; if (d > 1e-5 * a[FNR] + 1e-6) bad = FNR }
     END { exit (bad || m != n || n == 0) }' "$T/one/metrics.jsonl" "$T/two/metrics.jsonl" ||
    { fail "the two-host losses differ from the one-process run's"; paste -d'\n' "$T/one/metrics.jsonl" "$T/two/metrics.jsonl" | head -6; }
grep -h '"exchange_ms"' "$T/two/metrics.jsonl" | tail -1
echo "cli_mpi_hosts: $fails failures"
[ "$fails" -eq 0 ]
