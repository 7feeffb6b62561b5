package mirror

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// This file is the reader of the objects desired.go and objects.go write:
// the gateway reads mirrors to open egress ports (Read), and a restarted
// controller reads them to recover the remote's exports (Recover). Keeping
// reader and writer together is what keeps them one contract; the
// round-trip test in read_test.go holds them to it.

// Mirror is what a mirror Service says, decoded.
type Mirror struct {
	// Link and Cluster are the owning Link and the remote cluster.
	Link, Cluster string
	// Export is the remote export the mirror stands for: same namespace,
	// the remote Service's name (the mirror's own may be truncated).
	Export exports.Key
	// Type is the export's type; ClusterSetIP unless the mirror records
	// another.
	Type exports.Type
	// Hostname, on a host mirror, is the pod it stands for; empty on a
	// mirror. A headless mirror (Headless) stands for the pods through
	// their host mirrors and routes nothing itself.
	Hostname string
	Headless bool
	// Ports are the exported ports with the egress port of each.
	Ports []EgressPort
	// ReadyEndpoints is the exporting cluster's count of ready endpoints,
	// and HasReadyEndpoints whether the mirror records one (mirrors written
	// before the count existed do not).
	ReadyEndpoints    int32
	HasReadyEndpoints bool
}

// EgressPort is one exported port and the gateway port that carries it.
type EgressPort struct {
	Port   int32 // the exported (remote Service's) port
	Egress int32 // the egress port: the mirror port's targetPort
}

// Read decodes a mirror Service, checking it against the contract: both
// ownership labels, the remote-service annotation, the name the writer
// gives that remote Service from that cluster, a known export type,
// and TCP ports whose targetPort is an egress port in r. A port that breaks
// the contract is left out and reported; the mirror's other ports still
// count. ok is false when s is not a mirror at all (no ownership labels) or
// cannot be decoded.
func Read(s *corev1.Service, r contract.Range) (m Mirror, problems []error, ok bool) {
	link, owned := OwnerOf(s)
	if !owned {
		return Mirror{}, nil, false
	}
	where := s.Namespace + "/" + s.Name
	m = Mirror{Link: link, Cluster: s.Labels[contract.LabelSourceCluster]}
	remote := s.Annotations[contract.AnnotationRemoteService]
	if remote == "" {
		return Mirror{}, []error{fmt.Errorf("mirror %s: no %s annotation", where, contract.AnnotationRemoteService)}, false
	}
	m.Export = exports.Key{Namespace: s.Namespace, Name: remote}
	if h, isHost := Hostname(s); isHost {
		return readHost(s, m, h, r)
	}
	if want := contract.MirrorName(remote, m.Cluster); s.Name != want {
		// The writer names every mirror so; with the port claims binding
		// (namespace, name), the name fixes the remote target too.
		return Mirror{}, []error{fmt.Errorf("mirror %s: the mirror of %s from %s is named %s", where, remote, m.Cluster, want)}, false
	}
	switch t := exports.Type(s.Annotations[contract.AnnotationExportType]); t {
	case "", exports.ClusterSetIP:
		m.Type = exports.ClusterSetIP
	case exports.Headless:
		m.Type = t
	default:
		return Mirror{}, []error{fmt.Errorf("mirror %s: %s %q is not an export type", where, contract.AnnotationExportType, t)}, false
	}
	var err error
	m.ReadyEndpoints, m.HasReadyEndpoints, err = ReadyEndpoints(s)
	if err != nil {
		problems = append(problems, fmt.Errorf("mirror %s: %w", where, err))
	}
	if s.Spec.ClusterIP == corev1.ClusterIPNone {
		if m.Type != exports.Headless {
			return Mirror{}, append(problems, fmt.Errorf("mirror %s: headless, but its export is %s", where, m.Type)), false
		}
		m.Headless = true
		return m, problems, true
	}
	ports, portProblems := readPorts("mirror", where, s, r)
	m.Ports = ports
	return m, append(problems, portProblems...), true
}

// readHost decodes a host mirror: named for its (service, cluster,
// hostname), which with the claim on that name fixes the pod it reaches;
// the hostname must be a DNS label, as the exporting gateway requires.
func readHost(s *corev1.Service, m Mirror, hostname string, r contract.Range) (Mirror, []error, bool) {
	where := s.Namespace + "/" + s.Name
	if errs := validation.IsDNS1123Label(hostname); len(errs) > 0 {
		return Mirror{}, []error{fmt.Errorf("host mirror %s: %s %q: %s", where, contract.AnnotationRemoteHostname, hostname, strings.Join(errs, "; "))}, false
	}
	if want := contract.HostMirrorName(m.Export.Name, m.Cluster, hostname); s.Name != want {
		return Mirror{}, []error{fmt.Errorf("host mirror %s: the mirror of %s of %s from %s is named %s", where, hostname, m.Export.Name, m.Cluster, want)}, false
	}
	m.Type, m.Hostname = exports.Headless, hostname
	var problems []error
	m.Ports, problems = readPorts("host mirror", where, s, r)
	return m, problems, true
}

// ExportCreated reads the creation time of the export a mirror stands for
// (contract.AnnotationExportCreated); ok is false when the mirror records
// none or one that does not parse.
func ExportCreated(s *corev1.Service) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s.Annotations[contract.AnnotationExportCreated])
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// MaxReadyEndpoints bounds the ready-endpoints count a mirror may record:
// the largest a Service can have is far below it, and a weight above it
// could only come from a forged or corrupted annotation.
const MaxReadyEndpoints = 1 << 20

// ReadyEndpoints reads the count a mirror records
// (contract.AnnotationReadyEndpoints). ok is false when there is none; a
// value that is not a decimal count in [0, MaxReadyEndpoints] is an error
// and counts as none.
func ReadyEndpoints(s *corev1.Service) (n int32, ok bool, err error) {
	v, present := s.Annotations[contract.AnnotationReadyEndpoints]
	if !present {
		return 0, false, nil
	}
	c, perr := strconv.ParseInt(v, 10, 32)
	if perr != nil || c < 0 || c > MaxReadyEndpoints || strconv.FormatInt(c, 10) != v {
		return 0, false, fmt.Errorf("%s %q is not a count of ready endpoints (0-%d)", contract.AnnotationReadyEndpoints, v, MaxReadyEndpoints)
	}
	return int32(c), true, nil
}

// ReadPorts decodes the egress ports of a Ferry Service (a mirror or a
// clusterset Service): TCP ports whose targetPort is a number in r. kind
// names the object in the problems it reports.
func ReadPorts(kind string, s *corev1.Service, r contract.Range) ([]EgressPort, []error) {
	return readPorts(kind, s.Namespace+"/"+s.Name, s, r)
}

func readPorts(kind, where string, s *corev1.Service, r contract.Range) ([]EgressPort, []error) {
	var out []EgressPort
	var problems []error
	for _, p := range s.Spec.Ports {
		egress := p.TargetPort.IntValue()
		if p.TargetPort.Type != intstr.Int || !r.Contains(int32(egress)) || (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) {
			problems = append(problems, fmt.Errorf("%s %s port %d: targetPort %q is not an egress port in %s", kind, where, p.Port, p.TargetPort.String(), r))
			continue
		}
		out = append(out, EgressPort{Port: p.Port, Egress: int32(egress)})
	}
	return out, problems
}

// Recover rebuilds, from the mirrors a Link already owns, the exports that
// produced them. A controller that restarts uses it as its copy of the
// remote's state until the feed delivers a snapshot: the desired state is
// then exactly what exists (so the restart writes nothing), and health can
// still turn endpoints not-ready while the remote is unreachable
// (requirement III) even though this process never heard from it.
//
// What mirrors do not record is approximated: an export counts as having
// one ready endpoint when any of its slices has a ready endpoint (a mirror
// that was not-ready because the gateway was unhealthy stays not-ready
// until the feed says otherwise), and its allowed clusters are left empty,
// since Desired does not read them. A headless
// mirror's hostnames are its host mirrors'.
func Recover(owned Objects) []exports.Export {
	ready := map[string]bool{}
	for _, s := range owned.Slices {
		mirror := s.Labels[discoveryv1.LabelServiceName]
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				ready[s.Namespace+"/"+mirror] = true
			}
		}
	}
	// Host mirrors give back the hostnames of their export.
	hostnames := map[exports.Key][]string{}
	for _, s := range owned.Services {
		if h, ok := Hostname(s); ok {
			k := exports.Key{Namespace: s.Namespace, Name: s.Annotations[contract.AnnotationRemoteService]}
			hostnames[k] = append(hostnames[k], h)
		}
	}
	var out []exports.Export
	for _, s := range owned.Services {
		remote := s.Annotations[contract.AnnotationRemoteService]
		if _, isHost := Hostname(s); remote == "" || isHost {
			continue
		}
		e := exports.Export{
			Key:             exports.Key{Namespace: s.Namespace, Name: remote},
			Type:            exports.ClusterSetIP,
			SessionAffinity: string(s.Spec.SessionAffinity),
			Labels:          maps.Clone(s.Labels),
			Annotations:     maps.Clone(s.Annotations),
		}
		if t := exports.Type(s.Annotations[contract.AnnotationExportType]); t == exports.Headless {
			e.Type = t
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				e.Hostnames = slices.Sorted(slices.Values(hostnames[e.Key]))
			}
		}
		// As exportwatch.Compute says it: "None" or "ClientIP" with its timeout.
		if e.SessionAffinity == string(corev1.ServiceAffinityClientIP) {
			e.SessionAffinityTimeoutSeconds = affinityTimeout(s)
		} else {
			e.SessionAffinity = string(corev1.ServiceAffinityNone)
		}
		e.Labels, e.Annotations = ExportedMetadata(s)
		for _, p := range s.Spec.Ports {
			e.Ports = append(e.Ports, exports.Port{
				Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, AppProtocol: ptr.Deref(p.AppProtocol, ""),
			})
		}
		e.Created, _ = ExportCreated(s)
		e.InternalTrafficPolicy = s.Annotations[contract.AnnotationInternalTrafficPolicy]
		e.TrafficDistribution = s.Annotations[contract.AnnotationTrafficDistribution]
		e.Ports = append(e.Ports, ParseUncarried(s.Annotations[contract.AnnotationUncarriedPorts])...)
		slices.SortStableFunc(e.Ports, exports.ComparePorts)
		if n, ok, _ := ReadyEndpoints(s); ok {
			e.ReadyEndpoints = n
		} else if ready[s.Namespace+"/"+s.Name] {
			e.ReadyEndpoints = 1 // written before the count was recorded
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return exports.CompareKeys(out[i].Key, out[j].Key) < 0 })
	return out
}

// ExportedMetadata returns the labels and annotations a mirror copied from
// its export (nil when none): the keys its contract.AnnotationExportedKeys
// record lists, since the rest are other controllers'.
func ExportedMetadata(s *corev1.Service) (labels, annotations map[string]string) {
	if rec, ok := ParseExportedKeys(s.Annotations); ok {
		labels, annotations = pick(s.Labels, rec.Labels), pick(s.Annotations, rec.Annotations)
	} else {
		// Written before the record existed, when Ferry owned every key.
		labels, annotations = maps.Clone(s.Labels), maps.Clone(s.Annotations)
		maps.DeleteFunc(labels, func(k, _ string) bool { return fixedKey(k) })
		maps.DeleteFunc(annotations, func(k, _ string) bool { return fixedKey(k) })
	}
	if len(labels) == 0 {
		labels = nil
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	return labels, annotations
}

// pick returns the entries of m whose keys are listed in keys.
func pick(m map[string]string, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
