# Sourced by the image targets of the Makefile and by scripts/build-base-images.sh: points podman at
# a containers.conf made for this machine (CONTAINERS_CONF), written to .cache/podman/.
#
# Why: these sandboxes run as root without CAP_SYS_RESOURCE, so a container may not get podman's
# default open-file and process limits (crun/runc: "setrlimit RLIMIT_NOFILE: Operation not
# permitted"), and their cgroup layout is hybrid with a controller on the v2 side, which crun refuses
# ("cgroups in hybrid mode not supported"); runc accepts it. netavark (with aardvark-dns) rather than
# CNI, which Debian's podman falls back to, so that compose services find each other by name.
# Elsewhere these settings do no harm.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$_root/.cache/podman"
_nofile=$(ulimit -Hn)
[ "$_nofile" = unlimited ] && _nofile=1048576
_nproc=$(ulimit -Hu)
{ [ "$_nproc" = unlimited ] || [ "$_nproc" -gt 32768 ]; } && _nproc=32768
cat > "$_root/.cache/podman/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$_nofile:$_nofile", "nproc=$_nproc:$_nproc"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
CONF
export CONTAINERS_CONF="$_root/.cache/podman/containers.conf"
unset _root _nofile _nproc
