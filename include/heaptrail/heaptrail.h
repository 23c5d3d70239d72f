/* heaptrail/heaptrail.h — the whole public API of heaptrail. */
#ifndef HEAPTRAIL_HEAPTRAIL_H
#define HEAPTRAIL_HEAPTRAIL_H

#include "heaptrail/heap.h"
#include "heaptrail/trace.h"

#endif
