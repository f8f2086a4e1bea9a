// The one version constant: CMake's project(VERSION ...) passed to every target as CONDUCTOR_VERSION.
#pragma once

namespace conductor {

constexpr const char* kConductorVersion = CONDUCTOR_VERSION;

}  // namespace conductor
