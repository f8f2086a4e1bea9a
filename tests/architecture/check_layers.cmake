# The include-graph check of docs/architecture.md: every `#include "folder/..."` of a source file
# in a top-level folder must name its own folder or a folder on a LOWER layer of the table in
# docs/architecture.md (the block that starts with ```layers). A back-edge (or an edge within a
# layer) fails with the file, line and the two layers. Runs under CTest as plain CMake (no Python):
#
#   cmake -DSOURCE_DIR=<tree> [-DDOC=<architecture.md>] -P tests/architecture/check_layers.cmake
#
# tests/ is not checked (a test may reach anything it tests); folders missing from the table are an
# error, so a new folder has to be placed in the house before it builds on it.
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_layers: pass -DSOURCE_DIR=<source tree>")
endif()
if(NOT DOC)
  set(DOC "${SOURCE_DIR}/docs/architecture.md")
endif()
file(STRINGS "${DOC}" doc_lines)

# The layer table: lines "N: folder folder ..." inside the ```layers block.
set(in_block OFF)
set(folders "")
foreach(line IN LISTS doc_lines)
  if(line MATCHES "^```layers")
    set(in_block ON)
  elseif(in_block AND line MATCHES "^```")
    set(in_block OFF)
  elseif(in_block AND line MATCHES "^([0-9]+):(.*)$")
    set(layer "${CMAKE_MATCH_1}")
    string(REGEX REPLACE "#.*$" "" names "${CMAKE_MATCH_2}")
    string(REGEX MATCHALL "[a-z_]+" names "${names}")
    foreach(f IN LISTS names)
      set(layer_of_${f} ${layer})
      list(APPEND folders ${f})
    endforeach()
  endif()
endforeach()
list(LENGTH folders n_folders)
if(n_folders EQUAL 0)
  message(FATAL_ERROR "check_layers: ${DOC} has no ```layers block")
endif()

# Every top-level folder holding C++ sources must be placed.
file(GLOB top RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/*")
foreach(d IN LISTS top)
  if(IS_DIRECTORY "${SOURCE_DIR}/${d}" AND NOT d MATCHES "^(tests|build.*|docs|scripts|configs|experiments|\\..*)$")
    file(GLOB_RECURSE srcs "${SOURCE_DIR}/${d}/*.cpp" "${SOURCE_DIR}/${d}/*.h")
    if(srcs AND NOT DEFINED layer_of_${d})
      message(SEND_ERROR "check_layers: folder '${d}/' has C++ sources but no layer in ${DOC}")
    endif()
  endif()
endforeach()

set(edges 0)
set(errors 0)
foreach(f IN LISTS folders)
  file(GLOB_RECURSE srcs "${SOURCE_DIR}/${f}/*.cpp" "${SOURCE_DIR}/${f}/*.h")
  foreach(src IN LISTS srcs)
    file(STRINGS "${src}" includes REGEX "^#include \"[a-z_]+/")
    foreach(inc IN LISTS includes)
      string(REGEX REPLACE "^#include \"([a-z_]+)/.*$" "\\1" to "${inc}")
      if(to STREQUAL f)
        continue()
      endif()
      math(EXPR edges "${edges} + 1")
      file(RELATIVE_PATH rel "${SOURCE_DIR}" "${src}")
      if(NOT DEFINED layer_of_${to})
        message(SEND_ERROR "check_layers: ${rel}: ${inc}: folder '${to}/' has no layer in ${DOC}")
        math(EXPR errors "${errors} + 1")
      elseif(NOT layer_of_${to} LESS layer_of_${f})
        message(SEND_ERROR "check_layers: ${rel}: ${inc}: '${f}/' (layer ${layer_of_${f}}) may only include "
                           "folders of lower layers; '${to}/' is on layer ${layer_of_${to}}")
        math(EXPR errors "${errors} + 1")
      endif()
    endforeach()
  endforeach()
endforeach()
if(errors GREATER 0)
  message(FATAL_ERROR "check_layers: ${errors} include(s) against the layer order of ${DOC}")
endif()
message(STATUS "check_layers: ${edges} cross-folder includes of ${n_folders} folders follow ${DOC}")
