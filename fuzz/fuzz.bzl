"""cohort_fuzzer: one libFuzzer binary and its seed corpus."""

def cohort_fuzzer(name, deps):
    """A libFuzzer target `name` from `name`.cc, with its corpus in corpus/`name`/.

    Tagged manual: it links with -fsanitize=fuzzer, which only clang (--config=fuzz)
    understands.
    """
    native.cc_binary(
        name = name,
        srcs = [name + ".cc"],
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        deps = deps,
    )
    native.filegroup(
        name = name + "_corpus",
        srcs = native.glob(["corpus/" + name + "/*"]),
        tags = ["manual"],
    )
