// Layer 0 including layer 1: the back-edge the check must report.
#pragma once
#include "high/b.h"
