"""Names C reserves, and the names a model may not take.

A model's name prefixes every symbol of its generated API and names its header, ``<name>.h``, which sits in a folder
the compiler searches before the system's: a model called ``stdio`` would replace ``<stdio.h>`` for every file
compiled with it. Light on purpose (no numpy): the SConstruct checks model folders with it while it is read.
"""
from __future__ import annotations

from typing import Optional

# C99, C11 and C23 keywords (C23's bool, true, false, ... are macros of <stdbool.h> before it)
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local
alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual _BitInt
_Decimal128 _Decimal32 _Decimal64""".split())

# Headers (without .h) that generated code, the runtime, the kernels or the C libraries under them include by a bare
# name, so that a folder holding <name>.h on the include path would take their place.
RESERVED_HEADERS = frozenset("""
assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg stdatomic
stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar wctype
alloca endian features malloc memory strings unistd newlib ieeefp reent syslimits varargs stdfix unwind
arm_acle arm_bf16 arm_cde arm_cmse arm_fp16 arm_mve arm_mve_types arm_neon
arm_nnfunctions arm_nn_types arm_nnsupportfunctions arm_nn_math_types arm_nn_tables arm_nn_compiler
arm_nnfunctions_legacy arm_nn_legacy_support
arm_math arm_math_types arm_math_memory arm_common_tables arm_const_structs arm_helium_utils arm_mve_tables
cmsis_compiler cmsis_gcc cmsis_armcc cmsis_armclang cmsis_armclang_ltm cmsis_iccarm cmsis_tiarmclang cmsis_version
core_armv81mml core_armv8mbl core_armv8mml core_cm0 core_cm0plus core_cm1 core_cm23 core_cm3 core_cm33 core_cm35p
core_cm4 core_cm52 core_cm55 core_cm7 core_cm85 core_sc000 core_sc300 core_starmc1 mpu_armv7 mpu_armv8 pmu_armv8
tz_context
""".split())


def reserved_name_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot name a model's generated C (a C keyword, nnscons' own prefix, or ``<name>.h`` would hide
    a header the build includes), or None. Headers compare without case: a case-insensitive file system finds
    ``Stdio.h`` too."""
    if name in C_KEYWORDS:
        return f"'{name}' is a C keyword"
    if name.lower().startswith("nnscons"):
        return "names starting with nnscons belong to nnscons' runtime (its headers and symbols)"
    if name.lower() in RESERVED_HEADERS:
        return f"the generated {name}.h would hide <{name.lower()}.h>, a header the build includes"
    return None
