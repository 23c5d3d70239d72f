/* export_pprof.c — pprof's profile.proto (github.com/google/pprof/proto/profile.proto), gzip
 * compressed, encoded by hand: sample types alloc_objects/count, alloc_space/bytes,
 * inuse_objects/count, inuse_space/bytes (in use = live at the end of the trace), one sample per
 * stack, one location per return address with its inlined frames as lines, functions, and
 * mappings with their build ids. Frames are already symbolized, so the profile reads anywhere.
 * A profile of a moment of a live trace (hti_pprof_moment: the periodic profiles) has the state
 * then, the interval's own figures as four more sample types, labels and comments.
 *
 * The protobuf writer knows varints and length-delimited fields, all this message needs. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "analyze/analyze_internal.h"

/* ---- protobuf ---- */

typedef struct pb {
    uint8_t *data;
    size_t size, capacity;
    bool failed;
} pb;

static void pb_raw(pb *b, const void *bytes, size_t n)
{
    if (b->failed || hti_grow((void **)&b->data, &b->capacity, b->size + n, 1) != 0) {
        b->failed = true;
        return;
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
}

static void pb_varint(pb *b, uint64_t v)
{
    uint8_t bytes[10];
    size_t n = 0;
    do {
        bytes[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            bytes[n] |= 0x80;
        n++;
    } while (v);
    pb_raw(b, bytes, n);
}

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

/* A varint field; zero values are left out (proto3 defaults). */
static void pb_uint(pb *b, unsigned field, uint64_t v)
{
    if (!v)
        return;
    pb_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
    pb_varint(b, v);
}

static void pb_bytes(pb *b, unsigned field, const void *bytes, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | WIRE_BYTES);
    pb_varint(b, n);
    pb_raw(b, bytes, n);
}

static void pb_message(pb *b, unsigned field, pb *inner)
{
    if (inner->failed)
        b->failed = true;
    pb_bytes(b, field, inner->data, inner->size);
    inner->size = 0;
    inner->failed = false;
}

static void pb_packed(pb *b, unsigned field, const uint64_t *values, size_t n, pb *scratch)
{
    scratch->size = 0;
    for (size_t i = 0; i < n; i++)
        pb_varint(scratch, values[i]);
    pb_message(b, field, scratch);
}

/* ---- the profile's tables ---- */

typedef struct profile {
    ht_analysis *a;
    const hti_pprof_moment *moment; /* NULL: the end of the trace */
    hti_strings pool;
    hti_map string_index; /* interned pointer -> string table index */
    const char **strings;
    size_t string_count, string_capacity;
    hti_map function_index; /* key -> function id */
    struct function_key {
        const char *name, *file;
    } * functions_seen; /* by id - 1 */
    size_t function_count, function_capacity;
    hti_map location_index; /* address key -> location id */
    bool *module_used;      /* by module index: a location refers to it */
    pb locations, functions, scratch, line;
    bool failed;
} profile;

static int64_t string_id(profile *p, const char *text)
{
    if (!text)
        text = "";
    const char *s = hti_strings_intern(&p->pool, text, strlen(text));
    if (!s) {
        p->failed = true;
        return 0;
    }
    uint32_t index = hti_map_get(&p->string_index, (uint64_t)(uintptr_t)s);
    if (index != UINT32_MAX)
        return index;
    if (HTI_GROW(p->strings, p->string_count, p->string_capacity) != 0 ||
        hti_map_put(&p->string_index, (uint64_t)(uintptr_t)s, (uint32_t)p->string_count) != 0) {
        p->failed = true;
        return 0;
    }
    p->strings[p->string_count] = s;
    return (int64_t)p->string_count++;
}

static uint64_t function_id(profile *p, const char *name, const char *file)
{
    const char *n = hti_strings_intern(&p->pool, name, strlen(name));
    const char *f = file ? hti_strings_intern(&p->pool, file, strlen(file)) : NULL;
    if (!n || (file && !f)) {
        p->failed = true;
        return 0;
    }
    uint64_t key = hti_mix64((uint64_t)(uintptr_t)n * 31 + (uint64_t)(uintptr_t)f) | 1;
    for (;; key = hti_mix64(key + 1) | 1) {
        uint32_t id = hti_map_get(&p->function_index, key);
        if (id == UINT32_MAX)
            break;
        if (p->functions_seen[id - 1].name == n && p->functions_seen[id - 1].file == f)
            return id;
    }
    if (HTI_GROW(p->functions_seen, p->function_count, p->function_capacity) != 0) {
        p->failed = true;
        return 0;
    }
    uint64_t id = ++p->function_count;
    p->functions_seen[id - 1].name = n;
    p->functions_seen[id - 1].file = f;
    if (hti_map_put(&p->function_index, key, (uint32_t)id) != 0) {
        p->failed = true;
        return 0;
    }
    pb *m = &p->scratch;
    m->size = 0;
    pb_uint(m, 1, id);
    pb_uint(m, 2, (uint64_t)string_id(p, n));
    pb_uint(m, 3, (uint64_t)string_id(p, n));
    pb_uint(m, 4, (uint64_t)string_id(p, f));
    pb_message(&p->functions, 5, m);
    return id;
}

/* The location of one return address (or of a special site's label). */
static uint64_t location_id(profile *p, uint64_t address, const char *label, uint32_t site)
{
    uint64_t key = label ? UINT64_MAX - site : (address ? address : UINT64_MAX - 16);
    uint32_t id = hti_map_get(&p->location_index, key);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)p->location_index.count + 1;
    if (hti_map_put(&p->location_index, key, id) != 0) {
        p->failed = true;
        return 0;
    }
    pb *m = &p->scratch;
    pb loc = {0};
    pb_uint(&loc, 1, id);
    if (label) {
        uint64_t f = function_id(p, label, NULL);
        m->size = 0;
        pb_uint(m, 1, f);
        pb_message(&loc, 4, m);
    } else {
        size_t count;
        const hti_frame *frames = hti_symbolize(p->a->symbolizer, address, &count);
        if (!frames) {
            p->failed = true;
            free(loc.data);
            return 0;
        }
        if (frames[0].module_index >= 0) {
            pb_uint(&loc, 2, (uint64_t)frames[0].module_index + 1);
            p->module_used[frames[0].module_index] = true;
        }
        pb_uint(&loc, 3, address);
        char name[512];
        for (size_t i = 0; i < count; i++) {
            uint64_t f = function_id(p, hti_frame_name(name, sizeof name, &frames[i]),
                                     frames[i].file);
            p->line.size = 0;
            pb_uint(&p->line, 1, f);
            pb_uint(&p->line, 2, frames[i].line);
            pb_message(&loc, 4, &p->line);
        }
    }
    if (loc.failed)
        p->failed = true;
    pb_bytes(&p->locations, 4, loc.data, loc.size);
    free(loc.data);
    return id;
}

static uint64_t rounded(double v)
{
    return v >= 0.5 ? (uint64_t)nearbyint(v) : 0;
}

static void value_type(pb *out, unsigned field, profile *p, const char *type, const char *unit)
{
    pb *m = &p->scratch;
    m->size = 0;
    pb_uint(m, 1, (uint64_t)string_id(p, type));
    pb_uint(m, 2, (uint64_t)string_id(p, unit));
    pb_message(out, field, m);
}

static int encode(profile *p, pb *out)
{
    ht_analysis *a = p->a;
    string_id(p, ""); /* index 0 */
    const hti_pprof_moment *m = p->moment;
    value_type(out, 1, p, "alloc_objects", "count");
    value_type(out, 1, p, "alloc_space", "bytes");
    value_type(out, 1, p, "inuse_objects", "count");
    value_type(out, 1, p, "inuse_space", "bytes");
    size_t types = 4;
    if (m && m->interval) {
        value_type(out, 1, p, "interval_alloc_objects", "count");
        value_type(out, 1, p, "interval_alloc_space", "bytes");
        value_type(out, 1, p, "interval_inuse_objects", "count");
        value_type(out, 1, p, "interval_inuse_space", "bytes");
        types = 8;
    }
    uint64_t *ids = NULL;
    size_t id_capacity = 0;
    pb sample = {0}, tag = {0};
    for (uint32_t site = 0; site < a->site_count && !p->failed; site++) {
        const hti_site *s = &a->sites[site];
        bool peak = m && m->at_peak;
        uint64_t values[8] = {
            rounded(s->alloc_count),
            rounded(s->alloc_bytes),
            rounded(peak ? hti_site_peak_count(a, s) : s->live_count),
            rounded(peak ? hti_site_peak_bytes(a, s) : s->live_bytes),
        };
        if (types == 8)
            for (int k = 0; k < 4; k++)
                values[4 + k] = rounded(m->interval[4 * (size_t)site + (size_t)k]);
        bool any = false;
        for (size_t k = 0; k < types; k++)
            any |= values[k] != 0;
        if (!any)
            continue;
        const char *label = hti_site_label(site);
        size_t n = label ? 1 : s->depth;
        if (hti_grow((void **)&ids, &id_capacity, n ? n : 1, sizeof *ids) != 0) {
            p->failed = true;
            break;
        }
        for (size_t i = 0; i < n; i++)
            ids[i] = location_id(p, label ? 0 : s->frames[i], label, site);
        sample.size = 0;
        pb_packed(&sample, 1, ids, n, &p->scratch);
        pb_packed(&sample, 2, values, types, &p->scratch);
        if (m) { /* labels: the program and its pid, on every sample (collectors group by them) */
            pb_uint(&tag, 1, (uint64_t)string_id(p, "program"));
            pb_uint(&tag, 2, (uint64_t)string_id(p, a->info->program));
            pb_message(&sample, 3, &tag);
            pb_uint(&tag, 1, (uint64_t)string_id(p, "pid"));
            pb_uint(&tag, 3, a->info->pid);
            pb_message(&sample, 3, &tag);
        }
        pb_message(out, 2, &sample);
    }
    free(ids);
    free(sample.data);
    free(tag.data);
    /* Mappings: the modules frames fell in. */
    size_t modules = ht_reader_module_count(a->reader);
    for (size_t i = 0; i < modules && !p->failed; i++) {
        if (!p->module_used[i])
            continue;
        const ht_module *m = ht_reader_module(a->reader, i);
        char build_id[2 * 32 + 1] = "";
        for (uint32_t k = 0; k < m->BuildIdSize && k < 32; k++)
            snprintf(build_id + 2 * k, 3, "%02x", m->BuildId[k]);
        pb mapping = {0};
        pb_uint(&mapping, 1, i + 1);
        pb_uint(&mapping, 2, m->Start);
        pb_uint(&mapping, 3, m->Start + m->Size);
        pb_uint(&mapping, 4, m->Start - m->LoadAddress);
        pb_uint(&mapping, 5, (uint64_t)string_id(p, m->Path));
        pb_uint(&mapping, 6, (uint64_t)string_id(p, build_id));
        bool symbols = a->options.symbols;
        pb_uint(&mapping, 7, symbols);
        pb_uint(&mapping, 8, symbols);
        pb_uint(&mapping, 9, symbols);
        pb_uint(&mapping, 10, symbols);
        pb_message(out, 3, &mapping);
        free(mapping.data);
    }
    pb_raw(out, p->locations.data, p->locations.size);
    pb_raw(out, p->functions.data, p->functions.size);
    if (m) { /* time_nanos, duration_nanos: the interval the profile covers */
        pb_uint(out, 9, a->info->start_realtime_ns + m->from_ns);
        pb_uint(out, 10, m->time_ns - m->from_ns);
    } else {
        pb_uint(out, 9, a->info->start_realtime_ns);
        pb_uint(out, 10, hti_duration_ns(a));
    }
    value_type(out, 11, p, "space", "bytes");
    pb_uint(out, 12, a->info->sample_interval ? a->info->sample_interval : 1);
    if (m) {
        for (size_t i = 0; i < m->comment_count; i++)
            pb_uint(out, 13, (uint64_t)string_id(p, m->comments[i]));
        pb_uint(out, 14, (uint64_t)string_id(p, "inuse_space"));
    } else {
        pb_uint(out, 13, (uint64_t)string_id(p, "heaptrail: inuse = live at the end of the trace"));
        pb_uint(out, 14, (uint64_t)string_id(p, "alloc_space"));
    }
    /* The string table last, in index order: every id above has been handed out. */
    for (size_t i = 0; i < p->string_count; i++)
        pb_bytes(out, 6, p->strings[i], strlen(p->strings[i]));
    return p->failed || out->failed ? -ENOMEM : 0;
}

static int gzip_write(FILE *out, const uint8_t *data, size_t size)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uint8_t buffer[1 << 16];
    z.next_in = (Bytef *)(uintptr_t)data;
    int status = 0;
    size_t left = size;
    int result;
    do {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        z.avail_in = chunk;
        left -= chunk;
        int flush = left ? Z_NO_FLUSH : Z_FINISH;
        do {
            z.next_out = buffer;
            z.avail_out = sizeof buffer;
            result = deflate(&z, flush);
            if (result == Z_STREAM_ERROR) {
                status = -EIO;
                break;
            }
            size_t produced = sizeof buffer - z.avail_out;
            if (produced && fwrite(buffer, 1, produced, out) != produced)
                status = -EIO;
        } while (z.avail_out == 0 && status == 0);
    } while (left && status == 0);
    deflateEnd(&z);
    return status;
}

int hti_pprof_write(ht_analysis *a, FILE *out, const hti_pprof_moment *moment, char *error,
                    size_t error_size)
{
    profile p = {.a = a, .moment = moment};
    pb encoded = {0};
    size_t modules = ht_reader_module_count(a->reader);
    p.module_used = calloc(modules ? modules : 1, sizeof *p.module_used);
    int status = p.module_used ? encode(&p, &encoded) : -ENOMEM;
    if (status == 0)
        status = gzip_write(out, encoded.data, encoded.size);
    if (status)
        snprintf(error, error_size, "%s",
                 status == -ENOMEM ? "out of memory" : strerror(errno ? errno : EIO));
    free(encoded.data);
    free(p.locations.data);
    free(p.functions.data);
    free(p.scratch.data);
    free(p.line.data);
    free(p.strings);
    free(p.functions_seen);
    free(p.module_used);
    hti_map_free(&p.string_index);
    hti_map_free(&p.function_index);
    hti_map_free(&p.location_index);
    hti_strings_free(&p.pool);
    return status;
}

int hti_export_pprof(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                     size_t error_size)
{
    (void)o;
    return hti_pprof_write(a, out, NULL, error, error_size);
}
