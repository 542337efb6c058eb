/*
 * np-card: the np inference accelerator as a QEMU PCI Express device
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A thin adapter around the np emulator core (np_emu.h), which is the one
 * model of the card: this file maps the core's registers and frame buffer
 * into PCI BARs and gives the core a bus (DMA through the device's bus
 * master address space, MSI-X, logging). The programming interface is
 * include/np_abi.h.
 *
 *   BAR0  registers, NP_REGS_SIZE, 64-bit non-prefetchable. 32-bit
 *         naturally aligned accesses go to the core; other accesses are
 *         logged as guest errors, read as 0 and ignored on write.
 *   BAR2  frame buffer, fb-size bytes of RAM, 64-bit prefetchable. Peer
 *         cards reach it with DMA to its bus address.
 *   BAR4  MSI-X table and PBA, NP_MSIX_VECTORS vectors (NP_IRQ_*).
 *
 * The device is a PCI Express endpoint with Function Level Reset (a root
 * complex integrated endpoint when plugged into q35's pcie.0).
 *
 * Properties:
 *   sram-size=SIZE     SRAM of the card, a multiple of 4 KiB up to 192 MiB
 *                      (default 192M). Backed lazily: untouched SRAM costs
 *                      no host memory.
 *   fb-size=SIZE       frame buffer and BAR2 size, a power of two from 64K
 *                      to 32M (default 32M).
 *   dma-engines=N      DMA engines, 1..8 (default 4).
 *   serial=N           64-bit serial number in NP_REG_SERIAL_LO/HI; 0 (the
 *                      default) gives 0x4e50000000000001 + the index of the
 *                      card in this VM, so that every card differs.
 *
 * Fault injection, at run time, through the write-only property
 * inject-fault (QMP qom-set, or HMP qom-set):
 *   sram-ce            a corrected SRAM error (NP_REG_SRAM_CE += 1)
 *   sram-ue            an uncorrected SRAM error: NP_STATUS_FATAL and
 *                      NP_IRQ_ERROR
 *   overheat           the die passes NP_REG_TEMP_MAX: NP_STATUS_THROTTLED
 *                      for a few seconds and NP_IRQ_ERROR
 *   dma-error:engine=E,n=N
 *                      the N-th descriptor DMA engine E (or "compute")
 *                      starts from now on fails with a bus error
 *   hang:engine=E,n=N  engine E hangs at its N-th descriptor from now on
 *   dead               the card stops answering (BAR0 reads all-ones)
 *                      until FLR or a system reset
 *   sram-flip:addr=A,bits=B
 *                      B (1: corrected, 2: uncorrected) bits of the SRAM
 *                      word at card address A flip
 * (docs/hardware.md, "Fault injection"). Surprise removal is device_del.
 *
 * Usage: -device np-card,id=np0[,sram-size=...][,fb-size=...]
 *        [,dma-engines=...][,serial=...]
 *        (qemu) qom-set /machine/peripheral/np0 inject-fault sram-ue
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/host-utils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "sysemu/dma.h"
#include "trace.h"

#include <syslog.h>

#include "np_abi.h"
#include "np_emu.h"

#define TYPE_NP_CARD "np-card"
OBJECT_DECLARE_SIMPLE_TYPE(NpCardState, NP_CARD)

#define NP_CARD_PCIE_CAP_OFFSET 0x80
#define NP_CARD_SERIAL_BASE 0x4e50000000000001ULL

struct NpCardState {
    PCIDevice parent_obj;

    /* properties */
    uint64_t sram_size;
    uint64_t fb_size;
    uint32_t dma_engines;
    uint64_t serial;

    unsigned int index; /* creation order, for names and serials */
    struct np_emu *emu; /* the card; NULL outside realize..unrealize */
    MemoryRegion regs;  /* BAR0 */
    MemoryRegion fb;    /* BAR2, RAM owned by emu */
    /*
     * Set (under the BQL) when unrealize starts: MMIO handlers and bus
     * callbacks become no-ops while the core's workers are being joined.
     */
    bool stopping;
};

static unsigned int np_card_count;

/*
 * RCU for the core's worker threads.
 *
 * The core runs each queue on a thread QEMU did not create, and those
 * threads call pci_dma_*() and msix_notify(), which walk RCU-protected
 * flat views: a thread that reads them must be registered with RCU or
 * synchronize_rcu() would not wait for it. Bus callbacks are reached either
 * from a QEMU thread holding the BQL (an MMIO handler calling into the core,
 * already registered) or from a worker thread without it, so a callback
 * without the BQL registers its thread once; a pthread key destructor
 * unregisters it when the worker exits.
 */
static pthread_key_t np_card_rcu_key;
static pthread_once_t np_card_rcu_once = PTHREAD_ONCE_INIT;
static int np_card_rcu_key_err;
static __thread bool np_card_rcu_registered;

static void np_card_rcu_thread_exit(void *unused)
{
    rcu_unregister_thread();
}

/* Run once, from the first realize; workers exist only after it. */
static void np_card_rcu_key_init(void)
{
    np_card_rcu_key_err =
        pthread_key_create(&np_card_rcu_key, np_card_rcu_thread_exit);
}

static void np_card_attach_thread(void)
{
    if (np_card_rcu_registered || qemu_mutex_iothread_locked()) {
        return;
    }
    rcu_register_thread();
    pthread_setspecific(np_card_rcu_key, &np_card_rcu_registered);
    np_card_rcu_registered = true;
}

/* Bus callbacks: called by the core, concurrently, from its workers. */

/*
 * address_space_map() hands out a bounce buffer for anything that is not
 * RAM (MMIO, unassigned space, a disabled bus master address space) and
 * hides the access error: only a pointer into a RAM block is a real map.
 */
static bool np_card_is_ram(void *p)
{
    ram_addr_t offset;
    MemoryRegion *mr = memory_region_from_host(p, &offset);

    return mr && memory_region_is_ram(mr);
}

/*
 * DMA translation runs under the BQL: a refused access makes intel-iommu
 * record the fault and raise its own interrupt, and raising an interrupt
 * from a thread without the BQL aborts QEMU (tcg_handle_interrupt asserts
 * it). The copy itself does not: holding the BQL across it lets 16 cards'
 * workers starve the main loop and the guest's timers. So RAM (host memory,
 * a peer's frame buffer) is mapped under the BQL and copied without it,
 * inside an RCU read-side section that keeps a peer's frame buffer alive
 * (unrealize frees it after a grace period); anything else (a peer's
 * mailbox, a partial mapping, a refused access) is dispatched under the
 * BQL. Taking the BQL here cannot deadlock for the same reason as in
 * np_card_irq().
 */
static MemTxResult np_card_dma_rw(NpCardState *s, uint64_t addr, void *buf,
                                  size_t len, DMADirection dir)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool locked = qemu_mutex_iothread_locked();
    MemTxResult res = MEMTX_ERROR;
    dma_addr_t plen = len;
    void *p = NULL;

    np_card_attach_thread();
    if (!locked) {
        qemu_mutex_lock_iothread();
    }
    /* Unrealize drops the BQL while it quiesces the core: recheck. */
    if (qatomic_read(&s->stopping)) {
        goto out;
    }
    rcu_read_lock();
    /* Honours bus master enable and the vIOMMU in front of the device. */
    p = pci_dma_map(pdev, addr, &plen, dir);
    if (p && plen == len && np_card_is_ram(p)) {
        if (!locked) {
            qemu_mutex_unlock_iothread();
        }
        if (dir == DMA_DIRECTION_TO_DEVICE) {
            memcpy(buf, p, len);
        } else {
            memcpy(p, buf, len);
        }
        if (!locked) {
            qemu_mutex_lock_iothread();
        }
        pci_dma_unmap(pdev, p, len, dir, len);
        res = MEMTX_OK;
    } else {
        if (p) {
            pci_dma_unmap(pdev, p, plen, dir, 0);
        }
        res = pci_dma_rw(pdev, addr, buf, len, dir, MEMTXATTRS_UNSPECIFIED);
    }
    rcu_read_unlock();
out:
    if (!locked) {
        qemu_mutex_unlock_iothread();
    }
    return res;
}

static int np_card_dma_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
    NpCardState *s = opaque;
    MemTxResult res;

    trace_np_card_dma_read(s->index, addr, len);
    if (qatomic_read(&s->stopping)) {
        return -EFAULT;
    }
    res = np_card_dma_rw(s, addr, buf, len, DMA_DIRECTION_TO_DEVICE);
    if (res != MEMTX_OK) {
        trace_np_card_err_dma_read(s->index, addr, len, res);
        return -EFAULT;
    }
    return 0;
}

static int np_card_dma_write(void *opaque, uint64_t addr, const void *buf,
                             size_t len)
{
    NpCardState *s = opaque;
    MemTxResult res;

    trace_np_card_dma_write(s->index, addr, len);
    if (qatomic_read(&s->stopping)) {
        return -EFAULT;
    }
    /*
     * A write to a peer card's BAR2 lands in its RAM; one to its BAR0
     * mailbox is dispatched to its MMIO handler.
     */
    res = np_card_dma_rw(s, addr, (void *)buf, len, DMA_DIRECTION_FROM_DEVICE);
    if (res != MEMTX_OK) {
        trace_np_card_err_dma_write(s->index, addr, len, res);
        return -EFAULT;
    }
    return 0;
}

static void np_card_irq(void *opaque, unsigned int vector)
{
    NpCardState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);
    bool locked = qemu_mutex_iothread_locked();

    trace_np_card_irq(s->index, vector);
    if (vector >= NP_MSIX_VECTORS) {
        trace_np_card_err_irq_vector(s->index, vector);
        return;
    }
    /* Unrealize relies on this test coming before the BQL is taken. */
    if (qatomic_read(&s->stopping)) {
        return;
    }
    np_card_attach_thread();
    /*
     * MSI delivery needs the BQL. Taking it here cannot deadlock: the
     * core holds none of its locks while it calls us, and MMIO handlers
     * (which run under the BQL) never wait for a worker.
     */
    if (!locked) {
        qemu_mutex_lock_iothread();
    }
    if (!qatomic_read(&s->stopping)) {
        msix_notify(pdev, vector);
    }
    if (!locked) {
        qemu_mutex_unlock_iothread();
    }
}

static void np_card_log(void *opaque, int level, const char *msg)
{
    NpCardState *s = opaque;

    if (level <= LOG_ERR) {
        error_report("np-card: %s", msg);
    } else if (level == LOG_WARNING) {
        qemu_log_mask(LOG_GUEST_ERROR, "np-card: %s\n", msg);
    } else {
        trace_np_card_log(s->index, level, msg);
    }
}

/* BAR0 */

static bool np_card_mmio_valid(NpCardState *s, hwaddr addr, unsigned size,
                               bool write)
{
    if (size != 4 || (addr & 3)) {
        trace_np_card_err_mmio_access(s->index, addr, size, write);
        qemu_log_mask(LOG_GUEST_ERROR,
                      "np-card %u: %u-byte %s at BAR0+0x%" HWADDR_PRIx
                      " ignored: registers take aligned 32-bit accesses\n",
                      s->index, size, write ? "write" : "read", addr);
        return false;
    }
    return true;
}

static uint64_t np_card_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    NpCardState *s = opaque;
    uint32_t val;

    trace_np_card_mmio_read(s->index, addr, size);
    if (s->stopping || !np_card_mmio_valid(s, addr, size, false)) {
        return 0;
    }
    val = np_emu_mmio_read(s->emu, addr);
    trace_np_card_mmio_read_value(s->index, addr, val);
    return val;
}

static void np_card_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                               unsigned size)
{
    NpCardState *s = opaque;

    trace_np_card_mmio_write(s->index, addr, val, size);
    if (s->stopping || !np_card_mmio_valid(s, addr, size, true)) {
        return;
    }
    np_emu_mmio_write(s->emu, addr, val);
}

static const MemoryRegionOps np_card_mmio_ops = {
    .read = np_card_mmio_read,
    .write = np_card_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* Pass every access through so that bad ones are logged, not split. */
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/* Lifecycle */

static bool np_card_check_params(NpCardState *s, Error **errp)
{
    if (s->sram_size < 4 * KiB || s->sram_size > NP_SRAM_SIZE ||
        !QEMU_IS_ALIGNED(s->sram_size, 4 * KiB)) {
        error_setg(errp,
                   "np-card: sram-size %" PRIu64 " is invalid: use a "
                   "multiple of 4 KiB from 4K to 192M (default 192M)",
                   s->sram_size);
        return false;
    }
    if (s->fb_size < 64 * KiB || s->fb_size > NP_FB_SIZE ||
        !is_power_of_2(s->fb_size)) {
        error_setg(errp,
                   "np-card: fb-size %" PRIu64 " is invalid: use a "
                   "power of two from 64K to 32M (default 32M)",
                   s->fb_size);
        return false;
    }
    if (s->dma_engines < 1 || s->dma_engines > NP_MAX_DMA_ENGINES) {
        error_setg(errp,
                   "np-card: dma-engines %" PRIu32 " is invalid: use "
                   "1 to %u (default 4)",
                   s->dma_engines, NP_MAX_DMA_ENGINES);
        return false;
    }
    return true;
}

static void np_card_realize(PCIDevice *pdev, Error **errp)
{
    NpCardState *s = NP_CARD(pdev);
    struct np_emu_config cfg;
    const struct np_emu_bus bus = {
        .opaque = s,
        .dma_read = np_card_dma_read,
        .dma_write = np_card_dma_write,
        .irq = np_card_irq,
        .log = np_card_log,
    };
    uint64_t fb_size;
    void *fb;
    unsigned int v;
    int ret;

    if (!np_card_check_params(s, errp)) {
        return;
    }
    pthread_once(&np_card_rcu_once, np_card_rcu_key_init);
    if (np_card_rcu_key_err) {
        error_setg_errno(errp, np_card_rcu_key_err,
                         "np-card: cannot create "
                         "the thread key its DMA workers need");
        return;
    }
    s->index = np_card_count++;
    cfg = (struct np_emu_config){
        .sram_size = s->sram_size,
        .fb_size = s->fb_size,
        .dma_engines = s->dma_engines,
        .serial = s->serial ? s->serial : NP_CARD_SERIAL_BASE + s->index,
        .card_index = s->index,
    };
    trace_np_card_realize(s->index, s->sram_size, s->fb_size, s->dma_engines);

    ret = np_emu_create(&cfg, &bus, &s->emu);
    if (ret < 0) {
        error_setg_errno(errp, -ret,
                         "np-card %u: cannot create the card "
                         "model (sram-size %" PRIu64 ", fb-size %" PRIu64 ")",
                         s->index, s->sram_size, s->fb_size);
        return;
    }
    fb = np_emu_fb(s->emu, &fb_size);

    memory_region_init_io(&s->regs, OBJECT(s), &np_card_mmio_ops, s,
                          "np-card-regs", NP_REGS_SIZE);
    pci_register_bar(
        pdev, NP_BAR_REGS,
        PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64, &s->regs);

    memory_region_init_ram_ptr(&s->fb, OBJECT(s), "np-card-fb", fb_size, fb);
    pci_register_bar(pdev, NP_BAR_FB,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                         PCI_BASE_ADDRESS_MEM_TYPE_64 |
                         PCI_BASE_ADDRESS_MEM_PREFETCH,
                     &s->fb);

    if (msix_init_exclusive_bar(pdev, NP_MSIX_VECTORS, NP_BAR_MSIX, errp)) {
        goto err_emu;
    }
    for (v = 0; v < NP_MSIX_VECTORS; v++) {
        msix_vector_use(pdev, v);
    }

    ret = pcie_endpoint_cap_init(pdev, NP_CARD_PCIE_CAP_OFFSET);
    if (ret < 0) {
        error_setg_errno(errp, -ret,
                         "np-card %u: cannot add the PCI Express "
                         "capability",
                         s->index);
        goto err_msix;
    }
    pcie_cap_flr_init(pdev);
    return;

err_msix:
    msix_unuse_all_vectors(pdev);
    msix_uninit_exclusive_bar(pdev);
err_emu:
    /*
     * No MMIO has reached the card yet, so its workers are idle and none
     * waits for the BQL: destroying it under the BQL cannot deadlock.
     */
    np_emu_destroy(s->emu);
    s->emu = NULL;
}

/* Frees a card's core once no flat view can reach its frame buffer. */
typedef struct NpCardReaper {
    struct rcu_head rcu;
    struct np_emu *emu;
    unsigned int index;
} NpCardReaper;

static void np_card_reap(NpCardReaper *r)
{
    /*
     * Runs in the RCU thread under the BQL. The workers are idle (see
     * unrealize) and nothing can give them work any more, so no bus
     * callback is running or will run: joining them here cannot wait for
     * the BQL.
     */
    trace_np_card_destroy(r->index);
    np_emu_destroy(r->emu);
    g_free(r);
}

static void np_card_unrealize(PCIDevice *pdev)
{
    NpCardState *s = NP_CARD(pdev);
    NpCardReaper *r = g_new0(NpCardReaper, 1);

    trace_np_card_unrealize(s->index);
    /*
     * From here on MMIO handlers and resets ignore the guest, and bus
     * callbacks refuse DMA and drop interrupts without taking the BQL, so
     * MSI-X can go before the workers do.
     */
    qatomic_set(&s->stopping, true);
    pcie_cap_exit(pdev);
    msix_unuse_all_vectors(pdev);
    msix_uninit_exclusive_bar(pdev);
    memory_region_set_enabled(&s->fb, false);

    /*
     * Quiesce the card without the BQL: np_emu_reset() waits for every
     * worker to abort its descriptor, and a worker may be blocked on the
     * BQL right now (in MSI-X delivery or in DMA, see np_card_dma_rw()),
     * so waiting under the BQL could deadlock. While it is dropped
     * the stopping flag keeps this device inert. The core itself is freed
     * after an RCU grace period, not here: unrealize can run inside an RCU
     * read-side section (a guest config write that powers the slot off),
     * and vCPUs or peer cards may still reach the frame buffer through an
     * older flat view until the grace period ends.
     */
    qemu_mutex_unlock_iothread();
    np_emu_reset(s->emu);
    qemu_mutex_lock_iothread();

    r->emu = s->emu;
    r->index = s->index;
    s->emu = NULL;
    call_rcu(r, np_card_reap, rcu);
}

static void np_card_reset(DeviceState *dev)
{
    NpCardState *s = NP_CARD(dev);

    trace_np_card_reset(s->index);
    /*
     * System reset and FLR run under the BQL, so never wait for the
     * workers here: the card reports NP_STATUS_RESETTING until it is
     * READY again.
     */
    if (s->emu && !s->stopping) {
        np_emu_reset_async(s->emu);
    }
}

static void np_card_set_inject_fault(Object *obj, const char *value,
                                     Error **errp)
{
    NpCardState *s = NP_CARD(obj);
    struct np_emu_fault_args args;
    enum np_emu_fault fault;
    int ret;

    if (np_emu_fault_parse(value, &fault, &args)) {
        error_setg(errp,
                   "np-card: unknown fault '%s': use sram-ce, sram-ue, "
                   "overheat, dead, dma-error:engine=E,n=N, "
                   "hang:engine=E,n=N or sram-flip:addr=A,bits=1|2",
                   value);
        return;
    }
    if (!s->emu || s->stopping) {
        error_setg(errp, "np-card: inject-fault needs a realized card; set "
                         "it with qom-set once the VM runs");
        return;
    }
    trace_np_card_inject_fault(s->index, value);
    ret = np_emu_inject_args(s->emu, fault, &args);
    if (ret == -EBUSY) {
        error_setg(errp,
                   "np-card %u: the card is resetting; inject '%s' "
                   "again once NP_STATUS_READY is set",
                   s->index, value);
    } else if (ret == -EINVAL) {
        error_setg(errp,
                   "np-card %u: cannot inject '%s': engine E must "
                   "be below dma-engines (%u) or 'compute', n at least 1, "
                   "addr inside sram-size (0x%" PRIx64 ")",
                   s->index, value, s->dma_engines, (uint64_t)s->sram_size);
    } else if (ret < 0) {
        error_setg_errno(errp, -ret, "np-card %u: cannot inject '%s'", s->index,
                         value);
    }
}

static void np_card_write_config(PCIDevice *pdev, uint32_t addr, uint32_t val,
                                 int len)
{
    pci_default_write_config(pdev, addr, val, len);
    pcie_cap_flr_write_config(pdev, addr, val, len);
}

static Property np_card_properties[] = {
    DEFINE_PROP_SIZE("sram-size", NpCardState, sram_size, NP_SRAM_SIZE),
    DEFINE_PROP_SIZE("fb-size", NpCardState, fb_size, NP_FB_SIZE),
    DEFINE_PROP_UINT32("dma-engines", NpCardState, dma_engines, 4),
    DEFINE_PROP_UINT64("serial", NpCardState, serial, 0),
    DEFINE_PROP_END_OF_LIST(),
};

/* The card's state lives in the core, which cannot be serialised. */
static const VMStateDescription np_card_vmstate = {
    .name = TYPE_NP_CARD,
    .unmigratable = 1,
};

static void np_card_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(klass);

    pc->realize = np_card_realize;
    pc->exit = np_card_unrealize;
    pc->config_write = np_card_write_config;
    pc->vendor_id = NP_PCI_VENDOR_ID;
    pc->device_id = NP_PCI_DEVICE_ID;
    pc->subsystem_vendor_id = NP_PCI_SUBSYS_VENDOR_ID;
    pc->subsystem_id = NP_PCI_SUBSYS_ID;
    pc->revision = NP_PCI_REVISION;
    pc->class_id = NP_PCI_CLASS >> 8;

    dc->desc = "np inference accelerator";
    dc->reset = np_card_reset;
    dc->vmsd = &np_card_vmstate;
    device_class_set_props(dc, np_card_properties);
    object_class_property_set_description(
        klass, "sram-size", "SRAM size, a multiple of 4K up to 192M");
    object_class_property_set_description(
        klass, "fb-size",
        "frame buffer (BAR2) size, a power of two from 64K to 32M");
    object_class_property_set_description(klass, "dma-engines",
                                          "number of DMA engines, 1 to 8");
    object_class_property_set_description(
        klass, "serial", "serial number; 0 numbers the cards of the VM");
    object_class_property_add_str(klass, "inject-fault", NULL,
                                  np_card_set_inject_fault);
    object_class_property_set_description(
        klass, "inject-fault",
        "at run time (qom-set): sram-ce, sram-ue, overheat, dead, "
        "dma-error:engine=E,n=N, hang:engine=E,n=N, "
        "sram-flip:addr=A,bits=1|2");
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo np_card_info = {
    .name = TYPE_NP_CARD,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(NpCardState),
    .class_init = np_card_class_init,
    /* QEMU's layout of an interface list */
    /* clang-format off */
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
    /* clang-format on */
};

static void np_card_register_types(void)
{
    type_register_static(&np_card_info);
}

type_init(np_card_register_types)
