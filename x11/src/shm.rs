//! A MIT-SHM segment shared with the X server through a file descriptor
//! (MIT-SHM 1.2 `AttachFd`): `ShmGetImage` writes the pixels straight into
//! memory this process maps, instead of sending them through the socket.
//!
//! This is the crate's only unsafe code: mapping the memory and reading it.

use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{Drawable, ImageFormat};

use crate::X11Error;

/// A shared memory segment attached to the X server.
pub(crate) struct ShmSegment {
    segment: shm::Seg,
    memory: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; nothing in it is
// tied to the thread that created it.
unsafe impl Send for ShmSegment {}

impl ShmSegment {
    /// Creates a segment of `len` bytes and attaches it to the X server.
    /// Fails when the server cannot take a file descriptor (MIT-SHM older
    /// than 1.2, or a TCP connection, which cannot pass descriptors).
    pub(crate) fn attach(connection: &impl Connection, len: usize) -> Result<Self, X11Error> {
        let version = connection.shm_query_version()?.reply()?;
        if (version.major_version, version.minor_version) < (1, 2) {
            return Err(X11Error::MissingExtension("MIT-SHM 1.2"));
        }
        let fd: OwnedFd =
            memfd_create("rdpserve-x11-shm", MemfdFlags::CLOEXEC).map_err(std::io::Error::from)?;
        ftruncate(&fd, len as u64).map_err(std::io::Error::from)?;
        // SAFETY: a fresh shared mapping of a file this function just sized
        // to `len` bytes; no other mapping of it exists in this process.
        let memory = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(std::io::Error::from)?;
        let memory = NonNull::new(memory.cast::<u8>())
            .ok_or(X11Error::MissingExtension("MIT-SHM (mmap returned null)"))?;
        let mut this = Self {
            segment: 0,
            memory,
            len,
        };
        this.segment = connection.generate_id()?;
        // Read-write for the server: it writes the images.
        connection.shm_attach_fd(this.segment, fd, false)?.check()?;
        Ok(this)
    }

    /// Copies `width` x `height` pixels at (x, y) of `drawable` into the
    /// segment as a Z-pixmap and returns them (rows padded as the server's
    /// pixmap format says). Taking `&mut self` means no slice from an
    /// earlier call is alive while the server writes.
    pub(crate) fn get_image(
        &mut self,
        connection: &impl Connection,
        drawable: Drawable,
        (x, y, width, height): (i16, i16, u16, u16),
        size: usize,
    ) -> Result<&[u8], X11Error> {
        if size > self.len {
            return Err(X11Error::ImageTooLarge {
                size,
                capacity: self.len,
            });
        }
        connection
            .shm_get_image(
                drawable,
                x,
                y,
                width,
                height,
                !0,
                ImageFormat::Z_PIXMAP.into(),
                self.segment,
                0,
            )?
            .reply()?;
        // SAFETY: the mapping is `self.len` bytes long and lives as long as
        // `self`; `size <= self.len` was checked. The server finished writing
        // before it replied, and `&mut self` keeps another request from
        // being made while the returned slice is borrowed.
        Ok(unsafe { std::slice::from_raw_parts(self.memory.as_ptr(), size) })
    }

    /// The segment's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Detaches the segment from the server (before the connection closes).
    pub(crate) fn detach(&self, connection: &impl Connection) {
        let _ = connection.shm_detach(self.segment);
    }
}

impl Drop for ShmSegment {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `attach`, `self.len` bytes, unmapped
        // once; no slice of it outlives `self` (they borrow it).
        let _ = unsafe { munmap(self.memory.as_ptr().cast(), self.len) };
    }
}
