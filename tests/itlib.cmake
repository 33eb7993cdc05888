# The one helper library of the tests that run real programs (tests/itlib.h):
# the integration (it_*), statistics (st_*) and, through ft_lib, fault (ft_*)
# tests. Each of those parts includes this file; the first one defines it.
include_guard(GLOBAL)
add_library(itlib STATIC itlib.c itl_net.c itl_proc.c itl_admin.c itl_echo.c)
target_include_directories(itlib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(itlib PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes)

# weft_it_exe(name sources... [LIBS libs...]): a test program on itlib (the
# integration and statistics tests).
function(weft_it_exe name)
  cmake_parse_arguments(IT "" "" "LIBS" ${ARGN})
  add_executable(${name} ${IT_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE itlib ${IT_LIBS})
  target_compile_options(${name} PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes)
endfunction()
