/* The hot path of ``ctx.log`` in C, and a sender thread that never takes the GIL.
 *
 * Why C and not numpy or array: measured inside a training loop of 0.25 ms a step, the Python logging
 * call cost the loop 2-3 % and the Python sender thread another 1-2 % (each wake takes the GIL from the
 * training thread several times; see bench/README.md), against a target of 2 % for both. Here a call
 * of 10 keys is a dict walk and a memcpy under a mutex; the sender is a pthread that swaps the queue,
 * builds the frames of ``protocol.metrics_frame`` and writes them to the pipe, holding no Python object.
 *
 * What stays in Python (``sdk.RunContext``): checking a set of keys the first time it is seen (``new_keys``
 * returns the JSON of its names), and every call the fast path does not take (``slow``): a mapping that
 * is not a dict, a step that is not an int in range, a value that is not a float or an int, a value that
 * is not finite. ``slow`` refuses or cleans the call, then logs the clean row here again.
 *
 *   Pipe(fd)                     send(bytes): one frame, written now (the GIL released), whole
 *   MetricLog(pipe, interval, points, new_keys, slow)
 *                                log(metrics, step), post(bytes): a frame sent after the points logged
 *                                before it, close(): send everything and stop the thread
 *
 * A frame is written with one write() call (looping on short writes), under the pipe's mutex: frames of
 * the sender thread and of Python never interleave. In a child forked from a process that holds a
 * MetricLog (a DataLoader worker), that object does nothing (its thread is the parent's), as the
 * pure-Python one sends nothing there either; a Pipe still writes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEP 2147483647LL
#define STACK_KEYS 64
#define MAX_FRAME_POINTS (1 << 22)

static const char MAGIC[4] = {(char)0xff, 'P', 'T', 'W'};

/* A process forked after a MetricLog was made must not use it (its mutexes may be held by a thread
 * that does not exist there); each fork's child bumps this, and an object compares it with its own. */
static volatile unsigned long fork_generation = 0;

static void
after_fork_in_child(void)
{
    fork_generation++;
}

static double
wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Pipe ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int fd;
    int broken;
    unsigned long generation;
    pthread_mutex_t lock;
} Pipe;

/* Write all of data (the caller holds no GIL and holds p->lock). A vanished reader marks the pipe broken:
 * the supervisor is gone (it kills this process next) and training must not fail on it. */
static void
pipe_write_locked(Pipe *p, const char *data, size_t size)
{
    while (size > 0 && !p->broken) {
        ssize_t n = write(p->fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            p->broken = 1;
            return;
        }
        data += n;
        size -= (size_t)n;
    }
}

static int
Pipe_init(Pipe *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i", kwlist, &self->fd))
        return -1;
    self->broken = 0;
    self->generation = fork_generation;
    pthread_mutex_init(&self->lock, NULL);
    return 0;
}

static PyObject *
Pipe_send(Pipe *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (self->generation != fork_generation) {
        /* A forked child's copy: its mutex may have been held by a thread that the child does not have.
         * The child is single-threaded here (it holds the GIL and has not written yet): start afresh. */
        pthread_mutex_init(&self->lock, NULL);
        self->generation = fork_generation;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    pipe_write_locked(self, view.buf, (size_t)view.len);
    pthread_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
Pipe_get_broken(Pipe *self, void *closure)
{
    return PyBool_FromLong(self->broken);
}

static PyMethodDef Pipe_methods[] = {
    {"send", (PyCFunction)Pipe_send, METH_O, "Write one frame now, whole (the GIL released)."},
    {NULL},
};

static PyGetSetDef Pipe_getset[] = {
    {"broken", (getter)Pipe_get_broken, NULL, "True once a write found the reader gone.", NULL},
    {NULL},
};

static PyTypeObject PipeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ptw.executors._metric_log.Pipe",
    .tp_basicsize = sizeof(Pipe),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A pipe to the supervisor whose frames never interleave.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pipe_init,
    .tp_methods = Pipe_methods,
    .tp_getset = Pipe_getset,
};

/* ---- the queue: segments of rows, and frames posted between them ------------------------------ */

/* The JSON of a set of keys (``["loss","acc"]``), shared by the segments logged with it. */
typedef struct {
    long refs; /* atomic: the sender thread drops its references without the GIL */
    Py_ssize_t count;
    size_t size;
    char json[];
} KeySet;

static KeySet *
keyset_new(Py_ssize_t count, const char *json, size_t size)
{
    KeySet *k = malloc(sizeof(KeySet) + size);
    if (k == NULL)
        return NULL;
    k->refs = 1;
    k->count = count;
    k->size = size;
    memcpy(k->json, json, size);
    return k;
}

static void
keyset_release(KeySet *k)
{
    if (k != NULL && __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(k);
}

/* A row of a segment: its step, its time, then one value a key; a row is appended with one memcpy to one
 * place (what costs inside a training loop is the cache lines and pages a call touches, not instructions).
 * The sender turns rows into the frame's columns. */
typedef union {
    int64_t step;
    double number;
} Cell;

typedef struct Item {
    struct Item *next;
    KeySet *keys; /* a segment; NULL for a posted frame */
    Py_ssize_t rows;
    Cell *cells;  /* rows x (2 + keys->count) */
    char *frame;  /* a posted frame */
    size_t frame_size;
} Item;

static void
item_free(Item *item)
{
    keyset_release(item->keys);
    free(item->cells);
    free(item->frame);
    free(item);
}

static void
items_free(Item *item)
{
    while (item != NULL) {
        Item *next = item->next;
        item_free(item);
        item = next;
    }
}

/* A growable byte buffer for the frames being written. */
typedef struct {
    char *data;
    size_t size, capacity;
    int failed;
} Bytes;

/* Room for size bytes at the end (NULL once an allocation failed). */
static char *
bytes_reserve(Bytes *b, size_t size)
{
    if (b->failed)
        return NULL;
    if (b->size + size > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->size + size)
            capacity *= 2;
        char *grown = realloc(b->data, capacity);
        if (grown == NULL) {
            b->failed = 1;
            return NULL;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    char *at = b->data + b->size;
    b->size += size;
    return at;
}

static void
bytes_put(Bytes *b, const void *data, size_t size)
{
    char *at = bytes_reserve(b, size);
    if (at != NULL && size > 0)
        memcpy(at, data, size);
}

static void
bytes_text(Bytes *b, const char *text)
{
    bytes_put(b, text, strlen(text));
}

static void
bytes_u32(Bytes *b, uint32_t value) /* little-endian, as protocol.SIZES */
{
    unsigned char le[4] = {value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, (value >> 24) & 0xff};
    bytes_put(b, le, 4);
}

/* ---- MetricLog ------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    /* what a logging call touches, together: */
    pthread_mutex_t lock;
    Item *open;          /* the segment rows are appended to (the queue's tail), or NULL */
    KeySet *open_set;
    Cell *open_cells;    /* its rows, counted here until it is closed (then in the Item) */
    Py_ssize_t open_rows, open_capacity, open_stride;
    Py_ssize_t points;   /* logged and not yet taken */
    double drained_at;   /* when the sender last took points */
    double interval;
    Py_ssize_t flush_points;
    PyObject *last_keys; /* a tuple: the keys of the last row logged (the logging thread's, GIL held) */
    KeySet *last_set;
    unsigned long generation;
    int woken, closing, started, closed;
    /* the rest */
    Pipe *pipe;
    PyObject *new_keys; /* (keys: tuple, step: int) -> bytes: the JSON of the names, or raises */
    PyObject *slow;     /* (metrics, step) -> None: a call the fast path does not take */
    pthread_cond_t wake;
    Item *head, *tail;
    pthread_t thread;
} MetricLog;

/* The open segment's rows handed to its Item (the caller holds self->lock). */
static void
close_open_locked(MetricLog *self)
{
    if (self->open != NULL) {
        self->open->cells = self->open_cells;
        self->open->rows = self->open_rows;
        self->open = NULL;
        self->open_set = NULL;
        self->open_cells = NULL;
        self->open_rows = self->open_capacity = 0;
    }
}

/* A frame being assembled: the JSON of its head, the columns of its body, the points it holds. */
typedef struct {
    Bytes head, body, frame;
    Py_ssize_t points;
    int segments;
} Group;

/* The group written as one frame (when it holds a segment; not when an allocation failed), then emptied. */
static void
group_send(Group *g, Pipe *pipe)
{
    if (g->segments == 0)
        return;
    bytes_text(&g->head, "]}");
    g->frame.size = 0;
    bytes_put(&g->frame, MAGIC, 4);
    bytes_u32(&g->frame, (uint32_t)g->head.size);
    bytes_u32(&g->frame, (uint32_t)g->body.size);
    bytes_put(&g->frame, g->head.data, g->head.size);
    bytes_put(&g->frame, g->body.data, g->body.size);
    if (!g->frame.failed && !g->head.failed && !g->body.failed) {
        pthread_mutex_lock(&pipe->lock);
        pipe_write_locked(pipe, g->frame.data, g->frame.size);
        pthread_mutex_unlock(&pipe->lock);
    }
    g->head.size = g->body.size = 0;
    g->head.failed = g->body.failed = g->frame.failed = 0;
    g->segments = 0;
    g->points = 0;
}

/* Rows [start, start + rows) of a segment added to the group: its keys and row count to the head, its
 * steps, times and row-major values, as columns, to the body. */
static void
group_add(Group *g, const Item *item, Py_ssize_t start, Py_ssize_t rows)
{
    Py_ssize_t width = item->keys->count, stride = 2 + width;
    char count[32];
    bytes_text(&g->head, g->segments ? ",{\"keys\":" : "{\"kind\":\"metrics\",\"segments\":[{\"keys\":");
    bytes_put(&g->head, item->keys->json, item->keys->size);
    snprintf(count, sizeof count, ",\"rows\":%zd}", rows);
    bytes_text(&g->head, count);
    char *block = bytes_reserve(&g->body, sizeof(double) * rows * stride);
    if (block != NULL) {
        char *steps = block, *times = block + sizeof(double) * rows, *values = times + sizeof(double) * rows;
        const Cell *first = item->cells + start * stride;
        for (Py_ssize_t r = 0; r < rows; r++) {
            const Cell *row = first + r * stride;
            memcpy(steps + sizeof(double) * r, &row[0], sizeof(double));
            memcpy(times + sizeof(double) * r, &row[1], sizeof(double));
            memcpy(values + sizeof(double) * r * width, &row[2], sizeof(double) * width);
        }
    }
    g->segments++;
    g->points += rows * width;
}

/* Frames of the items (segments grouped into frames of about flush_points points; a posted frame as it
 * is), written to the pipe. Called without the GIL and without self->lock. */
static void
send_items(MetricLog *self, Item *items)
{
    Group g = {0};
    Pipe *pipe = self->pipe;
    /* points a frame (a frame's sizes are 32-bit: never near 4 GiB whatever flush_points says) */
    Py_ssize_t budget = self->flush_points < MAX_FRAME_POINTS ? self->flush_points : MAX_FRAME_POINTS;
    for (Item *item = items; item != NULL; item = item->next) {
        if (item->keys == NULL) {
            group_send(&g, pipe);
            pthread_mutex_lock(&pipe->lock);
            pipe_write_locked(pipe, item->frame, item->frame_size);
            pthread_mutex_unlock(&pipe->lock);
            continue;
        }
        Py_ssize_t width = item->keys->count;
        if (width == 0 || item->rows == 0)
            continue;
        Py_ssize_t per_chunk = budget / width > 0 ? budget / width : 1;
        for (Py_ssize_t start = 0; start < item->rows; start += per_chunk) {
            Py_ssize_t rows = item->rows - start < per_chunk ? item->rows - start : per_chunk;
            if (g.segments && g.points + rows * width > budget)
                group_send(&g, pipe);
            group_add(&g, item, start, rows);
        }
    }
    group_send(&g, pipe);
    free(g.frame.data);
    free(g.head.data);
    free(g.body.data);
}

/* The queue, emptied (the caller holds self->lock). */
static Item *
take_locked(MetricLog *self)
{
    close_open_locked(self);
    Item *taken = self->head;
    if (self->points > 0)
        self->drained_at = wall_time();
    self->head = self->tail = NULL;
    self->points = 0;
    self->woken = 0;
    return taken;
}

static void *
sender_main(void *arg)
{
    MetricLog *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->closing) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        double until = (double)deadline.tv_nsec * 1e-9 + 2 * self->interval; /* SEND RULE */
        deadline.tv_sec += (time_t)until;
        deadline.tv_nsec = (long)((until - (double)(time_t)until) * 1e9);
        while (!self->woken && !self->closing) {
            if (pthread_cond_timedwait(&self->wake, &self->lock, &deadline) == ETIMEDOUT)
                break;
        }
        if (self->closing)
            break; /* close() sends what is left, in order, after joining */
        Item *taken = take_locked(self);
        pthread_mutex_unlock(&self->lock);
        if (taken != NULL) {
            send_items(self, taken);
            items_free(taken);
        }
        pthread_mutex_lock(&self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static int
MetricLog_init(MetricLog *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pipe", "interval", "points", "new_keys", "slow", NULL};
    PyObject *pipe, *new_keys, *slow;
    double interval;
    Py_ssize_t points;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!dnOO", kwlist, &PipeType, &pipe, &interval, &points,
                                     &new_keys, &slow))
        return -1;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "a MetricLog is initialised once");
        return -1;
    }
    if (!(interval > 0) || points < 1) {
        PyErr_SetString(PyExc_ValueError, "interval must be > 0 and points >= 1");
        return -1;
    }
    Py_INCREF(pipe);
    self->pipe = (Pipe *)pipe;
    Py_INCREF(new_keys);
    self->new_keys = new_keys;
    Py_INCREF(slow);
    self->slow = slow;
    self->interval = interval;
    self->flush_points = points;
    self->generation = fork_generation;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    if (pthread_create(&self->thread, NULL, sender_main, self) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start the metrics sender thread");
        return -1;
    }
    self->started = 1;
    return 0;
}

static PyObject *
call_slow(MetricLog *self, PyObject *metrics, PyObject *step)
{
    if (self->slow == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this MetricLog was cleared");
        return NULL;
    }
    PyObject *args[2] = {metrics, step};
    return PyObject_Vectorcall(self->slow, args, 2, NULL);
}

/* log(metrics, step): append one row. */
static PyObject *
MetricLog_log(MetricLog *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *metrics = NULL, *step_obj = NULL;
    if (nargs == 2 && kwnames == NULL) {
        metrics = args[0];
        step_obj = args[1];
    }
    else {
        Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
        if (nargs > 2)
            goto bad_args;
        if (nargs >= 1)
            metrics = args[0];
        if (nargs == 2)
            step_obj = args[1];
        for (Py_ssize_t i = 0; i < nkw; i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            PyObject **slot = NULL;
            if (PyUnicode_CompareWithASCIIString(name, "step") == 0)
                slot = &step_obj;
            else if (PyUnicode_CompareWithASCIIString(name, "metrics") == 0)
                slot = &metrics;
            if (slot == NULL || *slot != NULL)
                goto bad_args;
            *slot = args[nargs + i];
        }
        if (metrics == NULL || step_obj == NULL)
            goto bad_args;
    }
    if (self->generation != fork_generation || self->closed)
        Py_RETURN_NONE; /* a forked child's copy, or after close: nobody sends these */

    if (!PyLong_CheckExact(step_obj) || !PyDict_CheckExact(metrics))
        return call_slow(self, metrics, step_obj);
    int overflow = 0;
    long long step = PyLong_AsLongLongAndOverflow(step_obj, &overflow);
    if (overflow || step < 0 || step > MAX_STEP)
        return call_slow(self, metrics, step_obj);
    Py_ssize_t width = PyDict_GET_SIZE(metrics);
    if (width == 0)
        Py_RETURN_NONE;

    /* The values, and whether the keys are the last row's, in its order (usually the very same str objects). */
    double stack_values[STACK_KEYS];
    double *values = stack_values;
    PyObject *result = NULL;
    if (width > STACK_KEYS && (values = PyMem_Malloc(sizeof(double) * width)) == NULL)
        return PyErr_NoMemory();
    PyObject *last = self->last_keys;
    int same = last != NULL && PyTuple_GET_SIZE(last) == width;
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(metrics, &pos, &key, &value)) {
        double number;
        if (PyFloat_Check(value))
            number = PyFloat_AS_DOUBLE(value);
        else if (PyLong_Check(value)) {
            number = PyLong_AsDouble(value);
            if (number == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                result = call_slow(self, metrics, step_obj);
                goto done;
            }
        }
        else {
            result = call_slow(self, metrics, step_obj);
            goto done;
        }
        if (!isfinite(number)) {
            result = call_slow(self, metrics, step_obj);
            goto done;
        }
        values[i] = number;
        if (same) {
            PyObject *known = PyTuple_GET_ITEM(last, i);
            if (known != key && !(PyUnicode_CheckExact(key) && PyUnicode_Compare(known, key) == 0))
                same = 0;
        }
        i++;
    }

    if (!same) {
        if (self->new_keys == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "this MetricLog was cleared");
            goto done;
        }
        PyObject *tuple = PyTuple_New(width);
        if (tuple == NULL)
            goto done;
        pos = 0;
        i = 0;
        while (PyDict_Next(metrics, &pos, &key, &value)) { /* no Python code ran: the same dict */
            Py_INCREF(key);
            PyTuple_SET_ITEM(tuple, i++, key);
        }
        PyObject *call_args[2] = {tuple, step_obj};
        PyObject *json = PyObject_Vectorcall(self->new_keys, call_args, 2, NULL);
        if (json == NULL) {
            Py_DECREF(tuple);
            goto done;
        }
        if (!PyBytes_Check(json)) {
            Py_DECREF(json);
            Py_DECREF(tuple);
            PyErr_SetString(PyExc_TypeError, "new_keys must return the JSON of the keys as bytes");
            goto done;
        }
        KeySet *set = keyset_new(width, PyBytes_AS_STRING(json), (size_t)PyBytes_GET_SIZE(json));
        Py_DECREF(json);
        if (set == NULL) {
            Py_DECREF(tuple);
            PyErr_NoMemory();
            goto done;
        }
        Py_XSETREF(self->last_keys, tuple);
        keyset_release(self->last_set);
        self->last_set = set;
    }

    double now = wall_time();
    pthread_mutex_lock(&self->lock);
    if (self->open == NULL || self->open_set != self->last_set) {
        Item *segment = calloc(1, sizeof(Item));
        if (segment == NULL) {
            pthread_mutex_unlock(&self->lock);
            PyErr_NoMemory();
            goto done;
        }
        close_open_locked(self);
        __atomic_add_fetch(&self->last_set->refs, 1, __ATOMIC_ACQ_REL);
        segment->keys = self->last_set;
        if (self->tail != NULL)
            self->tail->next = segment;
        else
            self->head = segment;
        self->tail = segment;
        self->open = segment;
        self->open_set = self->last_set;
        self->open_stride = 2 + width;
    }
    if (self->open_rows == self->open_capacity) {
        Py_ssize_t capacity = self->open_capacity ? self->open_capacity * 2 : 32;
        Cell *grown = realloc(self->open_cells, sizeof(Cell) * capacity * self->open_stride);
        if (grown == NULL) {
            pthread_mutex_unlock(&self->lock);
            PyErr_NoMemory();
            goto done;
        }
        self->open_cells = grown;
        self->open_capacity = capacity;
    }
    Cell *row = self->open_cells + self->open_rows * self->open_stride;
    row[0].step = step;
    row[1].number = now;
    memcpy(row + 2, values, sizeof(double) * width);
    self->open_rows++;
    self->points += width;
    /* SEND RULE: a row goes at once when the last send is an interval old (what a live chart waits for),
     * else with the first row logged after that, or at the latest two intervals after the last send (the
     * sender's timer): at most one frame an interval whatever the pace, and a row every 10 ms with a 20 ms
     * interval waits 5 ms on average, not 10 (a timer of one interval races the next row and loses half
     * the time). */
    if (!self->woken && (self->points >= self->flush_points || now - self->drained_at >= self->interval)) {
        self->woken = 1;
        pthread_cond_signal(&self->wake);
    }
    pthread_mutex_unlock(&self->lock);
    result = Py_None;
    Py_INCREF(result);

done:
    if (values != stack_values)
        PyMem_Free(values);
    return result;

bad_args:
    PyErr_SetString(PyExc_TypeError, "ctx.log() takes (metrics, step)");
    return NULL;
}

/* post(frame): send a frame after every point logged before it, from the sender thread. */
static PyObject *
MetricLog_post(MetricLog *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "post takes the bytes of a frame");
        return NULL;
    }
    if (self->generation != fork_generation)
        Py_RETURN_NONE;
    if (self->closed)
        return Pipe_send(self->pipe, arg);
    Item *item = calloc(1, sizeof(Item));
    char *frame = malloc((size_t)PyBytes_GET_SIZE(arg) + 1);
    if (item == NULL || frame == NULL) {
        free(item);
        free(frame);
        return PyErr_NoMemory();
    }
    memcpy(frame, PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg));
    item->frame = frame;
    item->frame_size = (size_t)PyBytes_GET_SIZE(arg);
    pthread_mutex_lock(&self->lock);
    close_open_locked(self);
    if (self->tail != NULL)
        self->tail->next = item;
    else
        self->head = item;
    self->tail = item;
    self->woken = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    Py_RETURN_NONE;
}

/* close(): stop the sender thread, then send what is still queued. Idempotent. */
static PyObject *
MetricLog_close(MetricLog *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->started || self->closed || self->generation != fork_generation)
        Py_RETURN_NONE;
    self->closed = 1;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    self->closing = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    pthread_mutex_lock(&self->lock);
    Item *taken = take_locked(self);
    pthread_mutex_unlock(&self->lock);
    send_items(self, taken);
    items_free(taken);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static int
MetricLog_traverse(MetricLog *self, visitproc visit, void *arg)
{
    Py_VISIT(self->new_keys); /* bound methods of the RunContext, which holds this object */
    Py_VISIT(self->slow);
    Py_VISIT(self->pipe);
    return 0;
}

static int
MetricLog_clear(MetricLog *self)
{
    Py_CLEAR(self->new_keys);
    Py_CLEAR(self->slow);
    return 0;
}

static void
MetricLog_dealloc(MetricLog *self)
{
    PyObject_GC_UnTrack(self);
    if (self->started && self->generation == fork_generation) {
        if (!self->closed) {
            PyObject *done = MetricLog_close(self, NULL);
            if (done == NULL)
                PyErr_Clear();
            Py_XDECREF(done);
        }
        close_open_locked(self);
        items_free(self->head);
        pthread_mutex_destroy(&self->lock);
        pthread_cond_destroy(&self->wake);
    }
    keyset_release(self->last_set);
    Py_XDECREF(self->last_keys);
    Py_XDECREF(self->pipe);
    Py_XDECREF(self->new_keys);
    Py_XDECREF(self->slow);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef MetricLog_methods[] = {
    {"log", (PyCFunction)(void (*)(void))MetricLog_log, METH_FASTCALL | METH_KEYWORDS,
     "log(metrics, step): record a row of values at a step; returns at once."},
    {"post", (PyCFunction)MetricLog_post, METH_O, "post(frame): send a frame after the points before it."},
    {"close", (PyCFunction)MetricLog_close, METH_NOARGS, "Send everything and stop the sender thread."},
    {NULL},
};

static PyTypeObject MetricLogType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ptw.executors._metric_log.MetricLog",
    .tp_basicsize = sizeof(MetricLog),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)MetricLog_traverse,
    .tp_clear = (inquiry)MetricLog_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "Logged points in packed columns, sent to the supervisor by a thread of its own.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)MetricLog_init,
    .tp_dealloc = (destructor)MetricLog_dealloc,
    .tp_methods = MetricLog_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ptw.executors._metric_log",
    .m_doc = "ctx.log's packed columns and their sender thread (see executors/_metric_log.c).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__metric_log(void)
{
    if (PyType_Ready(&PipeType) < 0 || PyType_Ready(&MetricLogType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&PipeType);
    Py_INCREF(&MetricLogType);
    if (PyModule_AddObject(m, "Pipe", (PyObject *)&PipeType) < 0 ||
        PyModule_AddObject(m, "MetricLog", (PyObject *)&MetricLogType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    static int registered = 0;
    if (!registered) {
        pthread_atfork(NULL, NULL, after_fork_in_child);
        registered = 1;
    }
    return m;
}
