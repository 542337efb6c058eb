// SPDX-License-Identifier: GPL-2.0-only
/*
 * np_vfio_pci: VFIO variant driver for the np inference card.
 *
 * Userspace (libnp) drives the card through the standard VFIO device that
 * vfio_pci_core provides; this driver only adds what the kernel must own:
 *
 *  - hwmon (temperature, power, voltage) and sysfs telemetry on the PCI
 *    device, read from BAR0 through the driver's own mapping, so that
 *    monitoring works while a process holds the card;
 *  - a card reset through NP_REG_CONTROL for VFIO_DEVICE_RESET and between
 *    users when the PCI core has no reset method (no FLR, no PM reset, no
 *    bus reset on a root bus), so one user's SRAM never reaches the next.
 *
 * See docs/driver.md.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/hwmon.h>
#include <linux/iopoll.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/pm_runtime.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "np_abi.h"

/* np_emu resets in milliseconds; real silicon scrubs 192 MiB of SRAM. */
#define NP_RESET_TIMEOUT_MS 5000
#define NP_RESET_POLL_US 1000

struct np_vfio_pci_device {
	struct vfio_pci_core_device core_device;
	/*
	 * Our own BAR0 mapping: vfio_pci_core maps BARs lazily and only for
	 * the user, and telemetry must work without one.
	 */
	void __iomem *regs;
	/*
	 * Non-zero while the PCI core resets the card (FLR with memory
	 * decoding off), which vfio_pci_core does on open and close without
	 * memory_lock: telemetry answers -EAGAIN instead of reading a card
	 * that does not decode its BARs.
	 */
	atomic_t resets;
	/* From NP_REG_ID and NP_REG_CONFIG at probe: which queue statistics
	 * the card has (ABI minor >= 1) and for how many DMA engines. */
	u8 abi_minor;
	u8 dma_engines;
};

static struct np_vfio_pci_device *np_from_dev(struct device *dev)
{
	struct vfio_pci_core_device *core_device = dev_get_drvdata(dev);

	return container_of(core_device, struct np_vfio_pci_device,
			    core_device);
}

/*
 * MMIO is only meaningful in D0 with memory decoding on; the user may turn
 * decoding off through the config region at any time, and vfio_pci_core
 * changes both only with memory_lock held for writing.
 */
static bool np_mmio_enabled(struct np_vfio_pci_device *np)
{
	struct pci_dev *pdev = np->core_device.pdev;
	u16 cmd;

	if (pdev->current_state != PCI_D0)
		return false;
	if (pci_read_config_word(pdev, PCI_COMMAND, &cmd))
		return false;
	return cmd & PCI_COMMAND_MEMORY;
}

/*
 * Begin a telemetry read. Wakes a card that runtime PM put to sleep while
 * nobody used it, but never one the user sent to low power with
 * VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: waking it would signal the user's
 * wakeup eventfd behind its back. Waits for a reset in progress instead of
 * reading a card that may not answer.
 */
static int np_mmio_begin(struct np_vfio_pci_device *np)
{
	struct vfio_pci_core_device *vdev = &np->core_device;
	struct device *dev = &vdev->pdev->dev;
	int ret;

	if (READ_ONCE(vdev->pm_runtime_engaged) || atomic_read(&np->resets))
		return -EAGAIN;
	/* vfio_pci_core's runtime resume takes memory_lock: get it first. */
	ret = pm_runtime_resume_and_get(dev);
	if (ret)
		return ret;
	ret = down_read_killable(&vdev->memory_lock);
	if (ret)
		goto err_put;
	if (vdev->pm_runtime_engaged || !np_mmio_enabled(np)) {
		ret = -EAGAIN;
		goto err_unlock;
	}
	return 0;

err_unlock:
	up_read(&vdev->memory_lock);
err_put:
	pm_runtime_put(dev);
	return ret;
}

static void np_mmio_end(struct np_vfio_pci_device *np)
{
	up_read(&np->core_device.memory_lock);
	pm_runtime_put(&np->core_device.pdev->dev);
}

/*
 * A surprise-removed or dead card reads all-ones; NP_REG_ID never does, so
 * it tells an all-ones counter from a missing card. A reset that began
 * after np_mmio_begin() also reads all-ones: that card is busy, not gone.
 */
static int np_reg_read(struct np_vfio_pci_device *np, u32 reg, u32 *val)
{
	*val = ioread32(np->regs + reg);
	if (*val != ~0u || ioread32(np->regs + NP_REG_ID) != ~0u)
		return 0;
	if (atomic_read(&np->resets) || !np_mmio_enabled(np))
		return -EAGAIN;
	return -ENODEV;
}

/* The counters run while we read: re-read until the high half is stable. */
static int np_reg_read64(struct np_vfio_pci_device *np, u32 lo_reg, u32 hi_reg,
			 u64 *val)
{
	u32 hi, lo, hi2;
	int ret;

	ret = np_reg_read(np, hi_reg, &hi);
	if (ret)
		return ret;
	for (;;) {
		ret = np_reg_read(np, lo_reg, &lo);
		if (ret)
			return ret;
		ret = np_reg_read(np, hi_reg, &hi2);
		if (ret)
			return ret;
		if (hi == hi2)
			break;
		hi = hi2;
	}
	*val = (u64)hi << 32 | lo;
	return 0;
}

static int np_telemetry_read(struct np_vfio_pci_device *np, u32 reg, u32 *val)
{
	int ret;

	ret = np_mmio_begin(np);
	if (ret)
		return ret;
	ret = np_reg_read(np, reg, val);
	np_mmio_end(np);
	return ret;
}

static int np_telemetry_read64(struct np_vfio_pci_device *np, u32 lo_reg,
			       u32 hi_reg, u64 *val)
{
	int ret;

	ret = np_mmio_begin(np);
	if (ret)
		return ret;
	ret = np_reg_read64(np, lo_reg, hi_reg, val);
	np_mmio_end(np);
	return ret;
}

/* ---- hwmon ---- */

static umode_t np_hwmon_is_visible(const void *data,
				   enum hwmon_sensor_types type, u32 attr,
				   int channel)
{
	switch (type) {
	case hwmon_temp:
		switch (attr) {
		case hwmon_temp_input:
		case hwmon_temp_max:
		case hwmon_temp_crit:
			return 0444;
		}
		break;
	case hwmon_power:
		if (attr == hwmon_power_input)
			return 0444;
		break;
	case hwmon_in:
		if (attr == hwmon_in_input)
			return 0444;
		break;
	default:
		break;
	}
	return 0;
}

static int np_hwmon_read(struct device *dev, enum hwmon_sensor_types type,
			 u32 attr, int channel, long *val)
{
	struct np_vfio_pci_device *np = dev_get_drvdata(dev);
	u32 reg, raw;
	int ret;

	switch (type) {
	case hwmon_temp:
		switch (attr) {
		case hwmon_temp_input:
			reg = NP_REG_TEMP;
			break;
		case hwmon_temp_max:
			reg = NP_REG_TEMP_MAX;
			break;
		case hwmon_temp_crit:
			reg = NP_REG_TEMP_CRIT;
			break;
		default:
			return -EOPNOTSUPP;
		}
		break;
	case hwmon_power:
		if (attr != hwmon_power_input)
			return -EOPNOTSUPP;
		reg = NP_REG_POWER;
		break;
	case hwmon_in:
		if (attr != hwmon_in_input)
			return -EOPNOTSUPP;
		reg = NP_REG_VOLTAGE;
		break;
	default:
		return -EOPNOTSUPP;
	}

	ret = np_telemetry_read(np, reg, &raw);
	if (ret)
		return ret;
	/* The card reports mW; hwmon wants uW. Temperatures are signed. */
	if (type == hwmon_power)
		*val = (long)raw * 1000;
	else if (type == hwmon_temp)
		*val = (s32)raw;
	else
		*val = raw;
	return 0;
}

static const struct hwmon_channel_info *np_hwmon_info[] = {
	HWMON_CHANNEL_INFO(temp, HWMON_T_INPUT | HWMON_T_MAX | HWMON_T_CRIT),
	HWMON_CHANNEL_INFO(power, HWMON_P_INPUT),
	HWMON_CHANNEL_INFO(in, HWMON_I_INPUT),
	NULL,
};

static const struct hwmon_ops np_hwmon_ops = {
	.is_visible = np_hwmon_is_visible,
	.read = np_hwmon_read,
};

static const struct hwmon_chip_info np_hwmon_chip_info = {
	.ops = &np_hwmon_ops,
	.info = np_hwmon_info,
};

/* ---- sysfs telemetry on the PCI device ---- */

enum np_attr_format {
	NP_ATTR_U32,
	NP_ATTR_U64,
	NP_ATTR_FW_VERSION,
	NP_ATTR_SERIAL,
	NP_ATTR_CARD_STATE,
	NP_ATTR_QUEUE_STAT, /* reg: the queue's register block */
	NP_ATTR_LINK,
	NP_ATTR_USE, /* a use register (ABI 1.2), shown as U32 */
};

struct np_attr {
	struct device_attribute attr;
	enum np_attr_format format;
	u32 reg;
	u32 reg_hi;
};

static const char *np_card_state(u32 status)
{
	/* Most severe first: a fatal card may also be throttled. */
	if (status & NP_STATUS_FATAL)
		return "fatal";
	if (status & NP_STATUS_RESETTING)
		return "resetting";
	if (status & NP_STATUS_THROTTLED)
		return "throttled";
	if (status & NP_STATUS_READY)
		return "ready";
	return "not-ready";
}

/*
 * One queue's statistics registers in one line, like /sys/block/<dev>/stat:
 * fence_waits fence_ns work_waits work_wait_ns work_done work_ns
 * work_max_ns (docs/driver.md).
 */
static ssize_t np_queue_stat_show(struct np_vfio_pci_device *np, u32 base,
				  char *buf)
{
	u32 fence_waits, work_waits, work_done, work_max;
	u64 fence_ns, work_wait_ns, work_ns;
	int ret;

	ret = np_mmio_begin(np);
	if (ret)
		return ret;
	ret = np_reg_read(np, base + NP_Q_FENCE_WAITS, &fence_waits);
	if (!ret)
		ret = np_reg_read64(np, base + NP_Q_FENCE_NS_LO,
				    base + NP_Q_FENCE_NS_HI, &fence_ns);
	if (!ret)
		ret = np_reg_read(np, base + NP_Q_WORK_WAITS, &work_waits);
	if (!ret)
		ret = np_reg_read64(np, base + NP_Q_WORK_WAIT_NS_LO,
				    base + NP_Q_WORK_WAIT_NS_HI, &work_wait_ns);
	if (!ret)
		ret = np_reg_read(np, base + NP_Q_WORK_DONE, &work_done);
	if (!ret)
		ret = np_reg_read64(np, base + NP_Q_WORK_NS_LO,
				    base + NP_Q_WORK_NS_HI, &work_ns);
	if (!ret)
		ret = np_reg_read(np, base + NP_Q_WORK_MAX_NS, &work_max);
	np_mmio_end(np);
	if (ret)
		return ret;
	return sysfs_emit(buf, "%u %llu %u %llu %u %llu %u\n", fence_waits,
			  fence_ns, work_waits, work_wait_ns, work_done,
			  work_ns, work_max);
}

/*
 * The link the card runs at, from the Link Status register the PCI core
 * reads. A root complex integrated endpoint (on a root bus, as in QEMU's
 * q35 pcie.0) has no link registers: there the card's own NP_REG_LINK.
 */
static ssize_t np_link_show(struct np_vfio_pci_device *np, char *buf)
{
	struct pci_dev *pdev = np->core_device.pdev;
	u32 gen, width, v;
	u16 lnksta;
	int ret;

	if (pci_is_pcie(pdev) && pci_pcie_type(pdev) != PCI_EXP_TYPE_RC_END) {
		ret = pcie_capability_read_word(pdev, PCI_EXP_LNKSTA, &lnksta);
		if (ret)
			return pcibios_err_to_errno(ret);
		if (PCI_POSSIBLE_ERROR(lnksta))
			return -EAGAIN;
		gen = lnksta & PCI_EXP_LNKSTA_CLS;
		width = (lnksta & PCI_EXP_LNKSTA_NLW) >>
			PCI_EXP_LNKSTA_NLW_SHIFT;
	} else {
		ret = np_telemetry_read(np, NP_REG_LINK, &v);
		if (ret)
			return ret;
		gen = NP_LINK_GEN(v);
		width = NP_LINK_WIDTH(v);
	}
	if (!gen || !width)
		return sysfs_emit(buf, "unknown\n");
	return sysfs_emit(buf, "Gen%u x%u\n", gen, width);
}

static ssize_t np_attr_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct np_attr *na = container_of(attr, struct np_attr, attr);
	struct np_vfio_pci_device *np = np_from_dev(dev);
	u64 v64;
	u32 v;
	int ret;

	if (na->format == NP_ATTR_QUEUE_STAT)
		return np_queue_stat_show(np, na->reg, buf);
	if (na->format == NP_ATTR_LINK)
		return np_link_show(np, buf);
	if (na->format == NP_ATTR_U64 || na->format == NP_ATTR_SERIAL)
		ret = np_telemetry_read64(np, na->reg, na->reg_hi, &v64);
	else
		ret = np_telemetry_read(np, na->reg, &v);
	if (ret)
		return ret;

	switch (na->format) {
	case NP_ATTR_U32:
	case NP_ATTR_USE:
		return sysfs_emit(buf, "%u\n", v);
	case NP_ATTR_U64:
		return sysfs_emit(buf, "%llu\n", v64);
	case NP_ATTR_FW_VERSION:
		return sysfs_emit(buf, "%u.%u.%u\n", v >> 16, (v >> 8) & 0xff,
				  v & 0xff);
	case NP_ATTR_SERIAL:
		return sysfs_emit(buf, "%016llx\n", v64);
	case NP_ATTR_CARD_STATE:
		return sysfs_emit(buf, "%s\n", np_card_state(v));
	default:
		return -EINVAL;
	}
}

#define NP_ATTR(_name, _format, _reg, _reg_hi)                   \
	static struct np_attr np_attr_##_name = {                \
		.attr = __ATTR(_name, 0444, np_attr_show, NULL), \
		.format = _format,                               \
		.reg = _reg,                                     \
		.reg_hi = _reg_hi,                               \
	}

NP_ATTR(fw_version, NP_ATTR_FW_VERSION, NP_REG_FW_VERSION, 0);
NP_ATTR(serial, NP_ATTR_SERIAL, NP_REG_SERIAL_LO, NP_REG_SERIAL_HI);
NP_ATTR(card_state, NP_ATTR_CARD_STATE, NP_REG_STATUS, 0);
NP_ATTR(core_clock_mhz, NP_ATTR_U32, NP_REG_CORE_CLK, 0);
NP_ATTR(uptime_ms, NP_ATTR_U64, NP_REG_UPTIME_LO, NP_REG_UPTIME_HI);
NP_ATTR(busy_percent, NP_ATTR_U32, NP_REG_BUSY, 0);
NP_ATTR(dma_bytes, NP_ATTR_U64, NP_REG_DMA_BYTES_LO, NP_REG_DMA_BYTES_HI);
NP_ATTR(dma_descs, NP_ATTR_U32, NP_REG_DMA_DESCS, 0);
NP_ATTR(dma_errors, NP_ATTR_U32, NP_REG_DMA_ERRORS, 0);
NP_ATTR(jobs, NP_ATTR_U32, NP_REG_JOBS, 0);
NP_ATTR(sram_ce, NP_ATTR_U32, NP_REG_SRAM_CE, 0);
NP_ATTR(sram_ue, NP_ATTR_U32, NP_REG_SRAM_UE, 0);
NP_ATTR(throttle_count, NP_ATTR_U32, NP_REG_THROTTLE_COUNT, 0);
NP_ATTR(sram_weight_bytes, NP_ATTR_USE, NP_REG_USE_WEIGHTS, 0);
NP_ATTR(sram_kv_bytes, NP_ATTR_USE, NP_REG_USE_KV, 0);
NP_ATTR(sram_prog_bytes, NP_ATTR_USE, NP_REG_USE_PROG, 0);
NP_ATTR(fb_used_bytes, NP_ATTR_USE, NP_REG_USE_FB, 0);
NP_ATTR(link, NP_ATTR_LINK, 0, 0);
NP_ATTR(dma0_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(0), 0);
NP_ATTR(dma1_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(1), 0);
NP_ATTR(dma2_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(2), 0);
NP_ATTR(dma3_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(3), 0);
NP_ATTR(dma4_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(4), 0);
NP_ATTR(dma5_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(5), 0);
NP_ATTR(dma6_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(6), 0);
NP_ATTR(dma7_stat, NP_ATTR_QUEUE_STAT, NP_DMA_BASE(7), 0);
NP_ATTR(compute_stat, NP_ATTR_QUEUE_STAT, NP_COMPUTE_BASE, 0);

/* one attribute a line, as sysfs lists them */
/* clang-format off */
static struct attribute *np_attrs[] = {
	&np_attr_fw_version.attr.attr,
	&np_attr_serial.attr.attr,
	&np_attr_card_state.attr.attr,
	&np_attr_core_clock_mhz.attr.attr,
	&np_attr_uptime_ms.attr.attr,
	&np_attr_busy_percent.attr.attr,
	&np_attr_dma_bytes.attr.attr,
	&np_attr_dma_descs.attr.attr,
	&np_attr_dma_errors.attr.attr,
	&np_attr_jobs.attr.attr,
	&np_attr_sram_ce.attr.attr,
	&np_attr_sram_ue.attr.attr,
	&np_attr_throttle_count.attr.attr,
	&np_attr_sram_weight_bytes.attr.attr,
	&np_attr_sram_kv_bytes.attr.attr,
	&np_attr_sram_prog_bytes.attr.attr,
	&np_attr_fb_used_bytes.attr.attr,
	&np_attr_link.attr.attr,
	&np_attr_dma0_stat.attr.attr,
	&np_attr_dma1_stat.attr.attr,
	&np_attr_dma2_stat.attr.attr,
	&np_attr_dma3_stat.attr.attr,
	&np_attr_dma4_stat.attr.attr,
	&np_attr_dma5_stat.attr.attr,
	&np_attr_dma6_stat.attr.attr,
	&np_attr_dma7_stat.attr.attr,
	&np_attr_compute_stat.attr.attr,
	NULL,
};
/* clang-format on */

/* Queue statistics only where the card has them: ABI 1.1, engines present. */
static umode_t np_attr_is_visible(struct kobject *kobj, struct attribute *a,
				  int n)
{
	struct np_attr *na = container_of(a, struct np_attr, attr.attr);
	struct np_vfio_pci_device *np = np_from_dev(kobj_to_dev(kobj));

	/* what a loaded model takes: ABI 1.2 */
	if (na->format == NP_ATTR_USE)
		return np->abi_minor >= 2 ? a->mode : 0;
	if (na->format != NP_ATTR_QUEUE_STAT)
		return a->mode;
	if (np->abi_minor < 1)
		return 0;
	if (na->reg != NP_COMPUTE_BASE &&
	    (na->reg - NP_DMA_BASE(0)) / NP_QUEUE_BLOCK_SIZE >= np->dma_engines)
		return 0;
	return a->mode;
}

static const struct attribute_group np_attr_group = {
	.name = "np",
	.attrs = np_attrs,
	.is_visible = np_attr_is_visible,
};

static const struct attribute_group *np_attr_groups[] = {
	&np_attr_group,
	NULL,
};

/* ---- card reset ---- */

/*
 * An FLR only starts the card's own reset, which scrubs SRAM and the frame
 * buffer: the card answers config and BAR0 accesses at once but reports
 * NP_STATUS_RESETTING until it is ready. Every reset path therefore ends
 * here, so that userspace never receives a card that is still resetting.
 *
 * Caller holds memory_lock, so memory decoding stays as checked.
 */
static int np_card_wait_ready(struct np_vfio_pci_device *np)
{
	struct pci_dev *pdev = np->core_device.pdev;
	u32 status;
	int ret;

	if (!np_mmio_enabled(np)) {
		pci_warn(
			pdev,
			"card reset needs memory decoding: set PCI_COMMAND_MEMORY first\n");
		return -EIO;
	}
	ret = readx_poll_timeout(
		ioread32, np->regs + NP_REG_STATUS, status,
		status == ~0u || ((status & NP_STATUS_READY) &&
				  !(status & NP_STATUS_RESETTING)),
		NP_RESET_POLL_US, NP_RESET_TIMEOUT_MS * USEC_PER_MSEC);
	if (status == ~0u) {
		pci_err(pdev,
			"card reset: the card stopped answering (status reads all-ones); check the slot and power\n");
		return -ENODEV;
	}
	if (ret) {
		pci_err(pdev,
			"card reset: not ready after %u ms (status %#x); the card needs a power cycle\n",
			NP_RESET_TIMEOUT_MS, status);
		return ret;
	}
	return 0;
}

/*
 * Reset the card: through the PCI core's reset when it has one (the caller
 * did it), else through NP_REG_CONTROL. Zapping the user's BAR mappings,
 * as vfio_pci_core does around an FLR, is not needed for the latter: the
 * card keeps decoding memory while it resets itself.
 */
static int np_card_reset(struct np_vfio_pci_device *np)
{
	struct vfio_pci_core_device *vdev = &np->core_device;
	int ret;

	down_write(&vdev->memory_lock);
	if (!vdev->reset_works && np_mmio_enabled(np))
		iowrite32(NP_CONTROL_RESET, np->regs + NP_REG_CONTROL);
	ret = np_card_wait_ready(np);
	up_write(&vdev->memory_lock);
	return ret;
}

/*
 * Advertise VFIO_DEVICE_FLAGS_RESET when we provide the reset ourselves:
 * userspace checks the flag before calling VFIO_DEVICE_RESET.
 */
static long np_vfio_pci_get_info(struct np_vfio_pci_device *np,
				 unsigned long arg)
{
	unsigned long flags_addr;
	u32 __user *uflags;
	u32 flags;
	long ret;

	/* The core validated argsz, so the flags field is the user's. */
	ret = vfio_pci_core_ioctl(&np->core_device.vdev, VFIO_DEVICE_GET_INFO,
				  arg);
	if (ret || np->core_device.reset_works)
		return ret;
	if (check_add_overflow(arg, offsetof(struct vfio_device_info, flags),
			       &flags_addr))
		return -EFAULT;
	uflags = (u32 __user *)flags_addr;
	if (get_user(flags, uflags))
		return -EFAULT;
	return put_user(flags | VFIO_DEVICE_FLAGS_RESET, uflags);
}

/* ---- vfio_device_ops ---- */

static int np_vfio_pci_open_device(struct vfio_device *core_vdev)
{
	struct np_vfio_pci_device *np = container_of(
		core_vdev, struct np_vfio_pci_device, core_device.vdev);
	struct vfio_pci_core_device *vdev = &np->core_device;
	int ret;

	ret = vfio_pci_core_enable(vdev);
	if (ret)
		return ret;
	/*
	 * vfio_pci_core_enable() reset the card if the PCI core can. If it
	 * cannot, the previous user's SRAM, frame buffer and queues are
	 * still there and must be cleared.
	 */
	ret = np_card_reset(np);
	if (ret) {
		vfio_pci_core_disable(vdev);
		return ret;
	}
	vfio_pci_core_finish_enable(vdev);
	return 0;
}

/*
 * vfio_pci_core_disable() resets the card with __pci_reset_function_locked(),
 * which bypasses the reset_prepare/reset_done handlers.
 */
static void np_vfio_pci_close_device(struct vfio_device *core_vdev)
{
	struct np_vfio_pci_device *np = container_of(
		core_vdev, struct np_vfio_pci_device, core_device.vdev);

	atomic_inc(&np->resets);
	vfio_pci_core_close_device(core_vdev);
	atomic_dec(&np->resets);
}

static long np_vfio_pci_ioctl(struct vfio_device *core_vdev, unsigned int cmd,
			      unsigned long arg)
{
	struct np_vfio_pci_device *np = container_of(
		core_vdev, struct np_vfio_pci_device, core_device.vdev);
	long ret;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return np_vfio_pci_get_info(np, arg);
	case VFIO_DEVICE_RESET:
		if (np->core_device.reset_works) {
			ret = vfio_pci_core_ioctl(core_vdev, cmd, arg);
			if (ret)
				return ret;
		}
		return np_card_reset(np);
	}
	return vfio_pci_core_ioctl(core_vdev, cmd, arg);
}

/*
 * The iommufd ops are those of any physical vfio-pci device; a kernel built
 * with IOMMUFD refuses to register a device without them.
 */
static const struct vfio_device_ops np_vfio_pci_ops = {
	.name = "np-vfio-pci",
	.init = vfio_pci_core_init_dev,
	.release = vfio_pci_core_release_dev,
	.open_device = np_vfio_pci_open_device,
	.close_device = np_vfio_pci_close_device,
	.ioctl = np_vfio_pci_ioctl,
	.device_feature = vfio_pci_core_ioctl_feature,
	.read = vfio_pci_core_read,
	.write = vfio_pci_core_write,
	.mmap = vfio_pci_core_mmap,
	.request = vfio_pci_core_request,
	.match = vfio_pci_core_match,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	.bind_iommufd = vfio_iommufd_physical_bind,
	.unbind_iommufd = vfio_iommufd_physical_unbind,
	.attach_ioas = vfio_iommufd_physical_attach_ioas,
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	.detach_ioas = vfio_iommufd_physical_detach_ioas,
#endif
};

/* ---- PCI driver ---- */

/* Refuse a card whose register layout this driver does not know. */
static int np_check_abi(struct np_vfio_pci_device *np)
{
	struct pci_dev *pdev = np->core_device.pdev;
	u32 id, config;
	int ret;

	ret = pci_enable_device_mem(pdev);
	if (ret)
		return ret;
	id = ioread32(np->regs + NP_REG_ID);
	config = ioread32(np->regs + NP_REG_CONFIG);
	pci_disable_device(pdev);

	if (id == ~0u) {
		pci_err(pdev,
			"BAR0 reads all-ones: the card does not answer; check the slot and power\n");
		return -ENODEV;
	}
	if (NP_ID_GET_MAGIC(id) != NP_ID_MAGIC ||
	    NP_ID_GET_MAJOR(id) != NP_ABI_MAJOR) {
		pci_err(pdev,
			"NP_REG_ID %#010x: card ABI %u.%u is not supported by this driver (ABI %u.x); install a matching np_vfio_pci\n",
			id, NP_ID_GET_MAJOR(id), NP_ID_GET_MINOR(id),
			NP_ABI_MAJOR);
		return -ENODEV;
	}
	np->abi_minor = NP_ID_GET_MINOR(id);
	np->dma_engines =
		min_t(u32, NP_CONFIG_DMA_ENGINES(config), NP_MAX_DMA_ENGINES);
	return 0;
}

/* Called around every PCI function reset: FLR, sysfs reset, VFIO. */
static void np_vfio_pci_reset_prepare(struct pci_dev *pdev)
{
	atomic_inc(&np_from_dev(&pdev->dev)->resets);
}

static void np_vfio_pci_reset_done(struct pci_dev *pdev)
{
	atomic_dec(&np_from_dev(&pdev->dev)->resets);
}

static const struct pci_error_handlers np_vfio_pci_err_handlers = {
	.error_detected = vfio_pci_core_aer_err_detected,
	.reset_prepare = np_vfio_pci_reset_prepare,
	.reset_done = np_vfio_pci_reset_done,
};

static void np_put_device(void *data)
{
	struct np_vfio_pci_device *np = data;

	vfio_put_device(&np->core_device.vdev);
}

static int np_vfio_pci_probe(struct pci_dev *pdev,
			     const struct pci_device_id *id)
{
	struct np_vfio_pci_device *np;
	struct device *hwmon;
	int ret;

	np = vfio_alloc_device(np_vfio_pci_device, core_device.vdev, &pdev->dev,
			       &np_vfio_pci_ops);
	if (IS_ERR(np))
		return PTR_ERR(np);
	dev_set_drvdata(&pdev->dev, &np->core_device);

	/*
	 * hwmon and the BAR0 mapping are device-managed and so live until
	 * after remove(); this reference keeps np alive until devres has
	 * torn them down (devres runs in reverse order).
	 */
	get_device(&np->core_device.vdev.device);
	ret = devm_add_action_or_reset(&pdev->dev, np_put_device, np);
	if (ret)
		goto out_put;

	/* No pci_request_region(): vfio_pci_core requests BARs for the user. */
	np->regs = pcim_iomap(pdev, NP_BAR_REGS, NP_REGS_SIZE);
	if (!np->regs) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = np_check_abi(np);
	if (ret)
		goto out_put;

	hwmon = devm_hwmon_device_register_with_info(&pdev->dev, "np", np,
						     &np_hwmon_chip_info, NULL);
	if (IS_ERR(hwmon)) {
		ret = PTR_ERR(hwmon);
		goto out_put;
	}

	ret = vfio_pci_core_register_device(&np->core_device);
	if (ret)
		goto out_put;
	return 0;

out_put:
	vfio_put_device(&np->core_device.vdev);
	return ret;
}

static void np_vfio_pci_remove(struct pci_dev *pdev)
{
	struct np_vfio_pci_device *np = np_from_dev(&pdev->dev);

	vfio_pci_core_unregister_device(&np->core_device);
	vfio_put_device(&np->core_device.vdev);
}

static const struct pci_device_id np_vfio_pci_table[] = {
	{ PCI_DEVICE(NP_PCI_VENDOR_ID, NP_PCI_DEVICE_ID) },
	{}
};
MODULE_DEVICE_TABLE(pci, np_vfio_pci_table);

/* Not const: vfio_pci_core_register_device() installs its PM ops here. */
static struct pci_driver np_vfio_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = np_vfio_pci_table,
	.probe = np_vfio_pci_probe,
	.remove = np_vfio_pci_remove,
	.err_handler = &np_vfio_pci_err_handlers,
	.driver_managed_dma = true,
	.dev_groups = np_attr_groups,
};
module_pci_driver(np_vfio_pci_driver);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("np project");
MODULE_DESCRIPTION(
	"VFIO PCI variant driver with hwmon and telemetry for np inference cards");
