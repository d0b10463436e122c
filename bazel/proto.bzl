"""cohort_proto_library: .proto files -> a cc_library, with Debian's protoc and grpc_cpp_plugin.

Generated headers are included by their workspace path, e.g.
`#include "protos/cohort/v1/job.pb.h"`. Every imported .proto of this workspace must
be listed in `srcs` or reachable through `deps` (the sandbox hides anything else);
well-known types (google/protobuf/*.proto) resolve from /usr/include.
"""

def cohort_proto_library(name, srcs, deps = [], visibility = None, testonly = False):
    """Declares `name` (cc_library) and `name_protos` (the .proto files, for dependents)."""
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [d + "_protos" for d in deps],
        visibility = visibility,
        testonly = testonly,
    )
    stems = [s[:-len(".proto")] for s in srcs]
    hdrs = [s + ".pb.h" for s in stems] + [s + ".grpc.pb.h" for s in stems]
    cc_srcs = [s + ".pb.cc" for s in stems] + [s + ".grpc.pb.cc" for s in stems]
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_protos" for d in deps],
        outs = hdrs + cc_srcs,
        cmd = " ".join([
            "/usr/bin/protoc -I. -I/usr/include",
            "--cpp_out=$(GENDIR) --grpc_out=$(GENDIR)",
            "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin",
        ] + ["$(location %s)" % s for s in srcs]),
        message = "protoc %s" % native.package_name(),
        testonly = testonly,
    )
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        deps = deps + ["@system//:grpc"],
        visibility = visibility,
        testonly = testonly,
    )
