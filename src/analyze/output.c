/* output.c — the small writers every renderer shares: a streaming JSON writer (pretty for the
 * report, compact for the Chrome export), and the human formats of bytes, times, counts and
 * frames used by the text report, massif trees and folded stacks.
 *
 * Weighted quantities (sampled traces) are rounded to integers at output; -0 never appears. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "analyze/analyze_internal.h"

/* ---- JSON ---- */

void hti_json_escape(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

void hti_json_init(hti_json *j, FILE *out, bool pretty)
{
    memset(j, 0, sizeof *j);
    j->out = out;
    j->pretty = pretty;
}

static void json_prefix(hti_json *j, const char *key)
{
    if (j->need_comma[j->depth])
        fputc(',', j->out);
    if (j->pretty && j->depth > 0) {
        fputc('\n', j->out);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->out);
    }
    j->need_comma[j->depth] = true;
    if (key) {
        hti_json_escape(j->out, key);
        fputs(j->pretty ? ": " : ":", j->out);
    }
}

static void json_open(hti_json *j, const char *key, char bracket)
{
    json_prefix(j, key);
    fputc(bracket, j->out);
    if (j->depth < 63)
        j->depth++;
    j->need_comma[j->depth] = false;
}

static void json_close(hti_json *j, char bracket)
{
    bool had = j->need_comma[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (j->pretty && had) {
        fputc('\n', j->out);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->out);
    }
    fputc(bracket, j->out);
}

void hti_json_begin_object(hti_json *j, const char *key)
{
    json_open(j, key, '{');
}
void hti_json_end_object(hti_json *j)
{
    json_close(j, '}');
}
void hti_json_begin_array(hti_json *j, const char *key)
{
    json_open(j, key, '[');
}
void hti_json_end_array(hti_json *j)
{
    json_close(j, ']');
}

void hti_json_frame(hti_json *j, const hti_frame *f)
{
    hti_json_begin_object(j, NULL);
    hti_json_hex(j, "address", f->address);
    hti_json_string(j, "function", f->function);
    hti_json_string(j, "file", f->file);
    hti_json_uint(j, "line", f->line);
    hti_json_string(j, "module", f->module);
    hti_json_hex(j, "offset", f->offset);
    hti_json_bool(j, "inlined", f->inlined);
    hti_json_end_object(j);
}

void hti_json_raw(hti_json *j, const char *key, const char *text)
{
    json_prefix(j, key);
    fputs(text, j->out);
}

void hti_json_string(hti_json *j, const char *key, const char *value)
{
    json_prefix(j, key);
    if (value)
        hti_json_escape(j->out, value);
    else
        fputs("null", j->out);
}

void hti_json_uint(hti_json *j, const char *key, uint64_t value)
{
    json_prefix(j, key);
    fprintf(j->out, "%" PRIu64, value);
}

void hti_json_int(hti_json *j, const char *key, int64_t value)
{
    json_prefix(j, key);
    fprintf(j->out, "%" PRId64, value);
}

void hti_json_round(hti_json *j, const char *key, double value)
{
    json_prefix(j, key);
    double r = isfinite(value) ? nearbyint(value) : 0.0;
    fprintf(j->out, "%.0f", r == 0 ? 0.0 : r);
}

void hti_json_double(hti_json *j, const char *key, double value)
{
    json_prefix(j, key);
    fprintf(j->out, "%.6g", isfinite(value) ? value : 0.0);
}

void hti_json_bool(hti_json *j, const char *key, bool value)
{
    json_prefix(j, key);
    fputs(value ? "true" : "false", j->out);
}

void hti_json_hex(hti_json *j, const char *key, uint64_t value)
{
    json_prefix(j, key);
    fprintf(j->out, "\"0x%" PRIx64 "\"", value);
}

void hti_json_finish(hti_json *j)
{
    fputc('\n', j->out);
}

const char *hti_basename(const char *path)
{
    if (!path)
        return "";
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

const char *hti_frame_name(char *buffer, size_t size, const hti_frame *f)
{
    if (f->function)
        snprintf(buffer, size, "%s", f->function);
    else if (f->module)
        snprintf(buffer, size, "%s+0x%" PRIx64, f->module, f->offset);
    else
        snprintf(buffer, size, "0x%" PRIx64, f->address);
    return buffer;
}

const char *hti_format_frame(char *buffer, size_t size, const hti_frame *f, bool with_module)
{
    char name[512];
    hti_frame_name(name, sizeof name, f);
    int n = snprintf(buffer, size, "%s%s", f->inlined ? "(inlined) " : "", name);
    if (n < 0 || (size_t)n >= size)
        return buffer;
    if (f->file && f->line)
        n += snprintf(buffer + n, size - (size_t)n, " at %s:%u", f->file, f->line);
    else if (f->file)
        n += snprintf(buffer + n, size - (size_t)n, " at %s", f->file);
    if (n >= 0 && (size_t)n < size && with_module && f->module && f->function)
        snprintf(buffer + n, size - (size_t)n, " in %s", f->module);
    return buffer;
}

/* ---- text ---- */

int hti_text_append(hti_text *t, const char *s, size_t n)
{
    if (hti_grow((void **)&t->data, &t->capacity, t->length + n + 1, 1) != 0)
        return -ENOMEM;
    memcpy(t->data + t->length, s, n);
    t->length += n;
    t->data[t->length] = '\0';
    return 0;
}

int hti_text_append_folded(hti_text *t, const char *name)
{
    size_t start = t->length;
    if (hti_text_append(t, name, strlen(name)) != 0)
        return -ENOMEM;
    for (char *c = t->data + start; *c; c++)
        if (*c == ';')
            *c = ':';
        else if (*c == '\n' || *c == '\r')
            *c = ' ';
    return 0;
}

int hti_text_folded_stack(hti_text *t, const hti_frame *const *frames, long n)
{
    char name[512];
    for (long i = n - 1; i >= 0; i--)
        if (hti_text_append_folded(t, hti_frame_name(name, sizeof name, frames[i])) != 0 ||
            (i && hti_text_append(t, ";", 1) != 0))
            return -ENOMEM;
    return 0;
}
